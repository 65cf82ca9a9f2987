"""Label sets, protocol splits, metrics and fusion: small known cases."""

from __future__ import annotations

import numpy as np
import pytest

from station.evaluate.fusion import ALPHAS, best_alpha, nested_predictions, other_folds_predictions, paper_predictions
from station.evaluate.labels import make_label_set
from station.evaluate.metrics import chance_levels, score, uf1_uar
from station.evaluate.protocols import ProtocolSkipped, kfold_splits_for, run_protocol, splits


def test_label_sets_follow_the_paper():
    obj = ["I", "II", "III", "Others", "VII", "I", "II", "iv", "I", "II"]
    nonobj = ["happiness", "surprise", "sadness", "others", "contempt", "happiness", "surprise", "disgust",
              "happiness", "Surprise "]
    ls = make_label_set("nonobjective", obj, nonobj, obj, min_class_size=2)
    assert "sadness" not in ls.classes and ls.dropped["sadness (dropped as in the paper)"] == 1
    assert ls.classes == ["happiness", "surprise"]  # others/contempt/disgust: 1 sample each < 2
    three = make_label_set("3class", obj, nonobj, obj, min_class_size=1)
    assert dict(zip(three.index.tolist(), three.y.tolist()))[2] == "negative"
    assert 3 not in three.index  # Others discarded
    assert three.classes == ["negative", "positive", "surprise"]
    assert three.dropped == {"Others": 1}
    objective = make_label_set("objective", obj, nonobj, obj, min_class_size=3)
    assert objective.classes == ["I", "II"]  # as the database spells them ("iv" == "IV" when counting)


def test_loso_never_mixes_a_subject_and_kfold_repeats_cover_every_sample():
    y = np.repeat([0, 1, 2], 10)
    groups = np.tile(np.arange(6), 5)
    loso = splits("loso", y, groups)
    assert len(loso) == 6
    for _, tr, te in loso:
        assert len(set(groups[te])) == 1 and not set(groups[tr]) & set(groups[te])
    kf = splits("kfold", y, groups, n_splits=5, n_repeats=3, seed=1)
    assert len(kf) == 15
    for rep in range(3):
        tests = np.concatenate([te for r, _, te in kf if r == rep])
        assert sorted(tests) == list(range(30))
    small = np.array([0] * 12 + [1] * 3)  # fewer members than folds: k drops to the smallest class (3)
    small_splits = splits("kfold", small, np.arange(15), n_splits=10, n_repeats=1)
    assert len(small_splits) == 3
    assert all(set(small[te]) == {0, 1} for _, _, te in small_splits)  # every class in every test fold
    assert kfold_splits_for(small, 10)[0] == 3 and "3-fold" in kfold_splits_for(small, 10)[1]
    with pytest.raises(ProtocolSkipped, match="at least 2 samples"):
        kfold_splits_for(np.array([0, 0, 0, 1]), 10)


def test_uf1_uar_megc_definitions():
    cm = np.array([[8, 2], [5, 5]])
    uf1, uar, recall = uf1_uar(cm)
    assert recall == pytest.approx([0.8, 0.5])
    assert uar == pytest.approx(0.65)
    assert uf1 == pytest.approx(np.mean([16 / (16 + 5 + 2), 10 / (10 + 2 + 5)]))
    y = np.array([0] * 10 + [1] * 10)
    pred = np.array([0] * 8 + [1] * 2 + [0] * 5 + [1] * 5)
    s = score(y, [pred], [[np.arange(20)]], 2)
    assert s.accuracy == pytest.approx(13 / 20) and s.uf1 == pytest.approx(uf1)
    assert (s.confusion == cm).all()
    assert s.macro_f1 == pytest.approx(uf1)  # pooled macro-F1 is UF1 when every class is tested


def test_fold_mean_f1_differs_from_pooled_and_chance_levels():
    from sklearn.metrics import f1_score

    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    pred = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    folds = [np.arange(4), np.arange(4, 8)]
    s = score(y, [pred], [folds], 2)
    per_fold = np.mean([f1_score(y[f], pred[f], average="macro") for f in folds])
    assert s.f1_fold_mean == pytest.approx(per_fold)
    assert s.macro_f1 == pytest.approx(f1_score(y, pred, average="macro"))
    assert s.macro_f1 != pytest.approx(s.f1_fold_mean)
    ch = chance_levels(np.array([0] * 6 + [1] * 3 + [2]), 3)
    assert ch["majority_accuracy"] == pytest.approx(0.6) and ch["uniform_accuracy"] == pytest.approx(1 / 3)
    assert ch["majority_uar"] == ch["uniform_uar"] == pytest.approx(1 / 3)
    # majority: F1 of the majority class 2*6/(10+6), others 0
    assert ch["majority_uf1"] == pytest.approx(12 / 16 / 3)
    rng = np.random.default_rng(0)
    yy = np.array([0] * 600 + [1] * 300 + [2] * 100)
    sim = np.mean([f1_score(yy, rng.integers(0, 3, len(yy)), average="macro") for _ in range(200)])
    assert chance_levels(yy, 3)["uniform_uf1"] == pytest.approx(sim, abs=0.01)


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1, 2], 16)
    groups = np.repeat(np.arange(6), 8)
    a = rng.normal(size=(48, 12))
    a[:, 0] += 2.5 * (y == 1)  # 2D sees class 1
    b = rng.normal(size=(48, 12))
    b[:, 0] += 2.5 * (y == 2)  # 3D sees class 2
    return {"LBP-TOP": a, "SI": b}, y, groups


def test_fusion_combines_complementary_modalities_and_nested_a_uses_training_only():
    feats, y, groups = _toy()
    labels = np.array(["a", "b", "c"])[y]
    run = run_protocol(feats, labels, groups, "loso", nested=True)
    acc2 = np.mean(run.oof("LBP-TOP", 0).argmax(1) == run.y)
    acc3 = np.mean(run.oof("SI", 0).argmax(1) == run.y)
    a, preds = paper_predictions(run, "LBP-TOP", "SI")
    assert np.mean(preds[0] == run.y) > max(acc2, acc3)
    assert 0 < a < 1
    alphas, nested = nested_predictions(run, "LBP-TOP", "SI")
    assert len(alphas) == 6 and (nested[0] >= 0).all()
    assert np.mean(nested[0] == run.y) > max(acc2, acc3) - 0.05
    for fold in run.folds:  # inner probabilities cover exactly the training part
        assert fold.inner_proba["SI"].shape == (len(fold.train), 3)


def test_best_alpha_ties_prefer_2d_and_other_folds_choice():
    y = np.array([0, 1, 0, 1])
    p2 = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    assert best_alpha(p2, p2[:, ::-1], y) == 0.0
    assert list(ALPHAS) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    chosen, pred = other_folds_predictions(p2, p2, y, [np.array([0, 1]), np.array([2, 3])])
    assert chosen == [0.0, 0.0] and (pred == y).all()
