"""The SVM: the lean fold routine equals Pipeline + GridSearchCV; scaling and C come from training data only."""

from __future__ import annotations

import numpy as np
import pytest

from station.evaluate.classifiers import aligned_proba, lean_select_and_fit, select_and_fit


def _data(seed=0, n=60, d=30, n_classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d)  # unequal scales: scaling matters
    X[:, :3] += 4.0 * np.eye(n_classes)[y] * X[:, :3].std(0)
    groups = np.repeat(np.arange(6), n // 6)
    return X, y, groups


@pytest.mark.parametrize("grouped,kernel", [(True, "linear"), (False, "linear"), (False, "rbf")])
def test_lean_search_equals_pipeline_gridsearch(grouped, kernel):
    X, y, groups = _data()
    train, test = np.arange(50), np.arange(50, 60)
    grid = (0.001, 0.1, 10.0)
    ref, c_ref = select_and_fit(X[train], y[train], groups[train], grouped=grouped, kernel=kernel, c_grid=grid)
    lean, c_lean, oof = lean_select_and_fit(X[train], y[train], groups[train], grouped=grouped, kernel=kernel,
                                            c_grid=grid, n_classes=3, inner_oof=True)
    assert c_lean == c_ref
    p_ref = aligned_proba(ref, X[test], np.arange(3))
    p_lean = aligned_proba(lean, X[test], np.arange(3))
    assert np.allclose(p_ref, p_lean, atol=1e-12)
    assert oof.shape == (50, 3) and np.allclose(oof.sum(1), 1.0)


def test_separable_data_is_learnt_and_probabilities_cover_all_classes():
    X, y, groups = _data(1)
    model, c, _ = lean_select_and_fit(X[:48], y[:48], groups[:48], grouped=True, n_classes=3)
    proba = aligned_proba(model, X[48:], np.arange(3))
    assert np.mean(proba.argmax(1) == y[48:]) >= 0.9


def test_class_missing_from_training_gets_zero_probability_column():
    X, y, groups = _data(2)
    keep = y != 2
    model, _, _ = lean_select_and_fit(X[keep], y[keep], groups[keep], grouped=False, n_classes=3)
    proba = aligned_proba(model, X[:5], np.arange(3))
    assert proba.shape == (5, 3) and (proba[:, 2] == 0).all()
