"""Leave-one-subject-out runs of the deep baselines: the contract with `station evaluate`, resuming."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from station.fileio import is_temp

torch = pytest.importorskip("torch")

from station import deep  # noqa: E402
from station.checks import StationError  # noqa: E402
from station.deep.loso import run_loso  # noqa: E402
from station.deep.synthetic import synthetic_database  # noqa: E402
from station.deep.training import DEFAULT_CONFIGS  # noqa: E402

TINY = {"ststnet": DEFAULT_CONFIGS["ststnet"].with_(epochs=6, batch_size=8),
        "cnn3d": DEFAULT_CONFIGS["cnn3d"].with_(epochs=2, batch_size=8, frames=6, size=20)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def database():
    return synthetic_database(4, 3, seed=11, frames=8, size=32)


@pytest.mark.parametrize("model_name", deep.MODELS)
def test_oof_probabilities_honour_the_evaluate_contract(database, model_name, tmp_path):
    samples, y, groups = database
    proba = deep.oof_probabilities(model_name, samples, y, groups, seed=0, work_dir=tmp_path,
                                   config=TINY[model_name], threads=1)
    assert proba.shape == (len(samples), len(np.unique(y)))
    assert np.all(proba >= 0) and proba.sum(axis=1) == pytest.approx(np.ones(len(samples)))
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith(f"{model_name}-")
    assert len(list(run_dir.glob("fold-*.pt"))) == len(list(run_dir.glob("fold-*.npz"))) == 4
    assert json.loads((run_dir / "run.json").read_text())["model"] == model_name
    assert not list(run_dir.glob("*.writing"))
    assert not [p.name for p in run_dir.iterdir() if is_temp(p)]  # station.fileio's temporary names


def test_each_row_comes_from_the_network_that_never_saw_its_subject(database, tmp_path):
    samples, y, groups = database
    result = run_loso("ststnet", samples, y, groups, work_dir=tmp_path, config=TINY["ststnet"])
    for stem in result.trained_folds:
        with np.load(result.run_dir / f"{stem}.npz") as fold:
            held_out = set(groups[fold["test_index"]])
            assert len(held_out) == 1 and stem.endswith(held_out.pop())
            assert np.array_equal(result.probabilities[fold["test_index"]], fold["probabilities"])
        state = torch.load(result.run_dir / f"{stem}.pt", weights_only=True)
        assert state["model_name"] == "ststnet" and len(state["loss_history"]) == TINY["ststnet"].epochs


def test_rerun_resumes_finished_folds_and_retrains_only_missing_ones(database, tmp_path):
    samples, y, groups = database
    first = run_loso("ststnet", samples, y, groups, seed=3, work_dir=tmp_path, config=TINY["ststnet"])
    assert len(first.trained_folds) == 4 and first.resumed_folds == []

    again = run_loso("ststnet", samples, y, groups, seed=3, work_dir=tmp_path, config=TINY["ststnet"])
    assert again.trained_folds == [] and sorted(again.resumed_folds) == sorted(first.trained_folds)
    assert np.array_equal(again.probabilities, first.probabilities)

    lost = first.trained_folds[2]
    (first.run_dir / f"{lost}.npz").unlink()  # as if interrupted after the checkpoint
    resumed = run_loso("ststnet", samples, y, groups, seed=3, work_dir=tmp_path, config=TINY["ststnet"])
    assert resumed.trained_folds == [lost] and len(resumed.resumed_folds) == 3
    assert np.array_equal(resumed.probabilities, first.probabilities)  # deterministic retraining


def test_same_seed_same_probabilities_and_changed_settings_get_their_own_folder(database, tmp_path):
    samples, y, groups = database
    a = deep.oof_probabilities("cnn3d", samples, y, groups, seed=1, work_dir=tmp_path / "a", config=TINY["cnn3d"])
    b = deep.oof_probabilities("cnn3d", samples, y, groups, seed=1, work_dir=tmp_path / "b", config=TINY["cnn3d"])
    assert np.array_equal(a, b)
    c = run_loso("cnn3d", samples, y, groups, seed=2, work_dir=tmp_path / "a", config=TINY["cnn3d"])
    assert len(c.trained_folds) == 4 and not np.array_equal(a, c.probabilities)
    assert len(list((tmp_path / "a").iterdir())) == 2  # the seed-1 run is kept untouched


def test_new_pixels_or_new_apex_under_the_same_names_start_a_new_run(database, tmp_path):
    samples, y, groups = database
    first = run_loso("ststnet", samples, y, groups, work_dir=tmp_path, config=TINY["ststnet"])
    changed = [copy.deepcopy(s) for s in samples]
    changed[0].cropped[0, 0, 0] ^= 1  # one pixel of one frame, as after a re-export
    second = run_loso("ststnet", changed, y, groups, work_dir=tmp_path, config=TINY["ststnet"])
    assert second.run_dir != first.run_dir and len(second.trained_folds) == 4
    moved = [copy.deepcopy(s) for s in samples]
    moved[5].record.apex -= 1  # recoded apex
    third = run_loso("ststnet", moved, y, groups, work_dir=tmp_path, config=TINY["ststnet"])
    assert third.run_dir not in (first.run_dir, second.run_dir)


def test_classes_are_sorted_labels_in_column_order(database, tmp_path):
    samples, y, groups = database
    relabelled = np.where(y == "negative", "zz-last", y)
    result = run_loso("ststnet", samples, relabelled, groups, work_dir=tmp_path, config=TINY["ststnet"])
    assert result.classes.tolist() == sorted(set(relabelled.tolist()))


def test_bad_requests_say_what_was_given(database, tmp_path):
    samples, y, groups = database
    with pytest.raises(StationError, match="'ststnet', 'cnn3d'.*'lstm'"):
        deep.oof_probabilities("lstm", samples, y, groups, work_dir=tmp_path)
    with pytest.raises(StationError, match="12 samples, 11 labels and 12 groups"):
        deep.oof_probabilities("ststnet", samples, y[:-1], groups, work_dir=tmp_path)
    with pytest.raises(StationError, match="at least 2 subjects"):
        deep.oof_probabilities("ststnet", samples, y, np.full(len(y), "s1"), work_dir=tmp_path)
    with pytest.raises(StationError, match="at least 2 classes"):
        deep.oof_probabilities("ststnet", samples, np.full(len(y), "positive"), groups, work_dir=tmp_path)


def test_runs_on_a_database_read_back_from_its_hdf5_files(database, tmp_path):
    from station.dataset import iter_samples, write_index, write_sample

    samples, y, groups = database
    for sample in samples:
        write_sample(tmp_path / "db", sample)
    write_index(tmp_path / "db", [s.record for s in samples])
    loaded = list(iter_samples(tmp_path / "db"))
    y_db = np.array([s.record.objective_class for s in loaded])
    groups_db = np.array([s.record.subject for s in loaded])
    from_files = deep.oof_probabilities("ststnet", loaded, y_db, groups_db, work_dir=tmp_path / "w",
                                        config=TINY["ststnet"])
    in_memory = deep.oof_probabilities("ststnet", samples, y, groups, work_dir=tmp_path / "m",
                                       config=TINY["ststnet"])
    assert np.array_equal(from_files, in_memory)
