"""The faster evaluation paths (issue #16 item 5) compute exactly what the plain ones do.

* every fold of several protocols in one parallel map of chunks, in two worker processes, equals
  one protocol at a time in this process (probabilities, inner probabilities, chosen C, order);
* the lean fold routine (direct LIBSVM) gives the same chosen C and the same outer probabilities
  as Pipeline(StandardScaler, SVC) + GridSearchCV, bit for bit;
* LBP-TOP and curvature from one read of each sample equal the two separate passes, failures too.
"""

from __future__ import annotations

import numpy as np
import pytest

from station.evaluate.cache import FeatureCache, curvature_matrices, feature_matrices, lbptop_matrices
from station.evaluate.classifiers import aligned_proba, lean_select_and_fit, select_and_fit
from station.evaluate.loaders import load_database
from station.evaluate.protocols import chunk_size, plan_protocol, run_plans, run_protocol
from station.evaluate.synthetic import make_database
from station.features.landmarks23 import CurvatureParams
from station.features.lbptop import LbpTopParams


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1, 2], 14)
    groups = np.repeat(np.arange(6), 7)
    a = rng.normal(size=(42, 40)).astype(np.float32)  # float32, as the feature cache stores them
    a[:, 0] += 2.0 * (y == 1)
    b = rng.normal(size=(42, 12)).astype(np.float32)
    b[:, 0] += 2.0 * (y == 2)
    return {"LBP-TOP": a, "SI": b}, np.array(["neg", "pos", "sur"])[y], groups


def _same_runs(a, b):
    assert (a.protocol, a.classes, a.n_repeats, a.n_splits, a.notes) == (b.protocol, b.classes, b.n_repeats,
                                                                          b.n_splits, b.notes)
    assert len(a.folds) == len(b.folds)
    for fa, fb in zip(a.folds, b.folds):
        assert fa.repeat == fb.repeat and np.array_equal(fa.test, fb.test) and fa.chosen_c == fb.chosen_c
        for m in fa.proba:
            assert np.array_equal(fa.proba[m], fb.proba[m])
            assert np.array_equal(fa.inner_proba[m], fb.inner_proba[m])


@pytest.mark.slow
def test_one_map_of_chunks_in_two_processes_equals_one_protocol_at_a_time():
    feats, labels, groups = _toy()
    options = dict(n_repeats=2, n_splits=4, nested=True, seed=3)
    plans = [plan_protocol(feats, labels, groups, p, **options) for p in ("loso", "kfold")]
    plans.append(plan_protocol({"LBP-TOP": feats["LBP-TOP"][:36]}, labels[:36], groups[:36], "kfold", **options))
    together = run_plans(plans, n_jobs=2)
    apart = [run_protocol(p.features, np.array(p.classes)[p.y], p.groups, p.protocol, n_jobs=1, **options)
             for p in plans]
    for a, b in zip(together, apart):
        _same_runs(a, b)
    events = []
    run_plans(plans[:1], n_jobs=1, progress=events.append)  # a callable hears about every chunk
    assert sum(len(e) for e in events) == len(plans[0].specs) == 6


def test_a_rich_bar_of_run_plans_counts_folds_not_chunks():
    from rich.progress import Progress

    feats, labels, groups = _toy()
    plans = [plan_protocol(feats, labels, groups, "kfold", n_repeats=4, n_splits=4, nested=False, seed=1)]
    seen = []

    class Kept(Progress):
        def remove_task(self, task_id):
            task = next(t for t in self.tasks if t.id == task_id)
            seen.append((task.description, task.total, task.completed))
            super().remove_task(task_id)

    assert chunk_size(16, 1) == 2  # 8 chunks of 2 folds
    with Kept(disable=True) as bar:
        run_plans(plans, n_jobs=1, progress=bar, description="kfold")
    assert seen == [("kfold", 16, 16)]


def test_chunks_leave_every_worker_enough_tasks():
    assert chunk_size(399, 2) == 4 and chunk_size(40, 2) == 2 and chunk_size(6, 2) == 1 and chunk_size(6, 64) == 1


@pytest.mark.parametrize("grouped", [True, False])
def test_direct_libsvm_lean_path_equals_the_svc_lean_path_bit_for_bit(grouped, monkeypatch):
    """The lean routine through LIBSVM directly and through SVC (what it did before, and its
    fallback): same chosen C, same outer and inner out-of-fold probabilities, to the bit."""
    from station.evaluate import libsvm

    feats, labels, groups = _toy(1)
    X, y = feats["LBP-TOP"], np.unique(labels, return_inverse=True)[1]
    train, test = np.arange(36), np.arange(36, 42)
    kw = dict(grouped=grouped, c_grid=(0.01, 0.1, 1.0), seed=2, n_classes=3, inner_oof=True)
    direct, c_direct, oof_direct = lean_select_and_fit(X[train], y[train], groups[train], **kw)
    monkeypatch.setattr(libsvm, "available", lambda: False)
    svc, c_svc, oof_svc = lean_select_and_fit(X[train], y[train], groups[train], **kw)
    assert c_direct == c_svc and np.array_equal(oof_direct, oof_svc)
    assert np.array_equal(aligned_proba(direct, X[test], np.arange(3)), aligned_proba(svc, X[test], np.arange(3)))
    ref, c_ref = select_and_fit(X[train], y[train], groups[train], grouped=grouped, c_grid=(0.01, 0.1, 1.0), seed=2)
    assert c_ref == c_direct  # and GridSearchCV makes the same choice


@pytest.mark.slow
def test_features_from_one_read_equal_two_passes_and_failures_alike(tmp_path):
    make_database(tmp_path / "db", n_subjects=2, n_samples=6, classes=("I", "II"), size=24, n_frames=8, seed=4)
    victim = sorted((tmp_path / "db" / "samples").rglob("*.h5"))[1]
    whole = victim.read_bytes()
    victim.write_bytes(whole[:2000])  # a cut file: both features fail for it
    db = load_database(tmp_path / "db")
    lbp, cur = LbpTopParams(radii=(1, 1, 2), rows=2, cols=2), CurvatureParams()
    fail_one, fail_two = {}, {}
    x2d, x3d = feature_matrices(db, lbp, cur, cache=FeatureCache(tmp_path / "c1"), failures=fail_one)
    ref2d = next(iter(lbptop_matrices(db, lbp, cache=FeatureCache(None), failures=fail_two).values()))
    ref3d = curvature_matrices(db, cur, cache=FeatureCache(None), failures=fail_two)
    assert fail_one == fail_two and len(fail_one) == 1 and fail_one[next(iter(fail_one))].startswith("LBP-TOP")
    assert np.array_equal(x2d, ref2d, equal_nan=True)
    assert all(np.array_equal(x3d[k], ref3d[k], equal_nan=True) for k in ("si", "hk", "sihk"))
    assert np.isnan(x2d).any(axis=1).sum() == 1
    # with one part cached only the other is computed, and nothing is counted twice
    victim.write_bytes(whole)
    db = load_database(tmp_path / "db")
    cache = FeatureCache(tmp_path / "c2")
    curvature_matrices(db, cur, cache=cache)
    cache.hits = cache.misses = 0
    x2d, x3d = feature_matrices(db, lbp, cur, cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert np.array_equal(x2d, next(iter(lbptop_matrices(db, lbp, cache=FeatureCache(None)).values())))
