"""Late fusion of 2D and 3D probabilities, paper eq. 13: ``P = (1 - a) p2D + a p3D``.

Two ways to choose ``a`` (grid 0, 0.1, ..., 1), reported side by side:

* ``paper``: the ``a`` with the best accuracy over the whole protocol's out-of-fold predictions
  (what the paper reports; optimistic, since ``a`` is chosen on the test predictions);
* ``nested``: in every outer fold, the ``a`` with the best accuracy on *inner* out-of-fold
  probabilities of that fold's training part; the test part never influences its own ``a``.
* ``other folds`` (for deep models, which give only outer out-of-fold probabilities): each
  fold's ``a`` is chosen on the other folds' out-of-fold predictions.

Ties go to the smallest ``a`` (the 2D-only end): 3D must earn its weight.
"""

from __future__ import annotations

import numpy as np

from station.evaluate.protocols import ProtocolRun

ALPHAS = np.round(np.linspace(0.0, 1.0, 11), 1)


def fuse(p2d: np.ndarray, p3d: np.ndarray, a: float) -> np.ndarray:
    return (1.0 - a) * p2d + a * p3d


def accuracy_of(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(p, axis=1) == y))


def best_alpha(p2d: np.ndarray, p3d: np.ndarray, y: np.ndarray, alphas: np.ndarray = ALPHAS) -> float:
    accs = [accuracy_of(fuse(p2d, p3d, a), y) for a in alphas]
    return float(alphas[int(np.argmax(accs))])


def alpha_curve(run: ProtocolRun, m2d: str, m3d: str, alphas: np.ndarray = ALPHAS) -> np.ndarray:
    """Mean accuracy over repeats for every ``a`` (the curve the paper's choice maximises)."""
    return np.array([np.mean([accuracy_of(fuse(run.oof(m2d, r), run.oof(m3d, r), a), run.y)
                              for r in range(run.n_repeats)]) for a in alphas])


def paper_predictions(run: ProtocolRun, m2d: str, m3d: str) -> tuple[float, list[np.ndarray]]:
    curve = alpha_curve(run, m2d, m3d)
    a = float(ALPHAS[int(np.argmax(curve))])
    return a, [np.argmax(fuse(run.oof(m2d, r), run.oof(m3d, r), a), axis=1) for r in range(run.n_repeats)]


def nested_predictions(run: ProtocolRun, m2d: str, m3d: str) -> tuple[list[float], list[np.ndarray]]:
    """Per-fold ``a`` from inner out-of-fold probabilities; returns (chosen a per fold, preds per repeat)."""
    preds = [np.full(len(run.y), -1, dtype=np.int64) for _ in range(run.n_repeats)]
    chosen = []
    for fold in run.folds:
        a = best_alpha(fold.inner_proba[m2d], fold.inner_proba[m3d], run.y[fold.train])
        chosen.append(a)
        preds[fold.repeat][fold.test] = np.argmax(fuse(fold.proba[m2d], fold.proba[m3d], a), axis=1)
    return chosen, preds


def other_folds_predictions(p2d: np.ndarray, p3d: np.ndarray, y: np.ndarray,
                            folds: list[np.ndarray]) -> tuple[list[float], np.ndarray]:
    """Per fold, ``a`` chosen on the out-of-fold predictions of all other folds."""
    pred = np.full(len(y), -1, dtype=np.int64)
    chosen = []
    for test in folds:
        rest = np.setdiff1d(np.arange(len(y)), test)
        a = best_alpha(p2d[rest], p3d[rest], y[rest])
        chosen.append(a)
        pred[test] = np.argmax(fuse(p2d[test], p3d[test], a), axis=1)
    return chosen, pred
