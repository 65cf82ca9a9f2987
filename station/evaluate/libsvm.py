"""LIBSVM on a precomputed kernel, called the way scikit-learn's ``SVC`` calls it, without SVC's per-call checks.

Why: a baseline at paper scale fits ~10^5 small SVMs (399 outer folds x 4 features x 13 fits).
In ``SVC.fit`` / ``predict_proba`` LIBSVM itself is ~15 % of the time; the rest is scikit-learn's
per-call input validation (``check_array``, ``type_of_target``, the dataframe probes behind them)
and ``StandardScaler``'s, repeated on arrays the fold routine has already checked once.
This module makes the same calls into the same LIBSVM (``sklearn.svm._libsvm``) with exactly
the arguments ``SVC(kernel="precomputed", C=C, probability=p, random_state=seed)`` passes
(same seed derivation, so LIBSVM's internal 5-fold Platt CV draws the same folds), and scales
with exactly ``StandardScaler``'s arithmetic: the chosen C, the probabilities and every report
figure are bit-identical to the SVC path (tests/test_evaluate_libsvm.py checks both against
scikit-learn, so an upgrade that changes either shows up there).

``sklearn.svm._libsvm`` is private; if it is missing or its signature changes (the test
catches that), :func:`available` is False and classifiers.py falls back to ``SVC``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

try:  # pragma: no cover - exercised by the import itself
    from sklearn.svm import _libsvm
except ImportError:  # pragma: no cover
    _libsvm = None

#: SVC's fixed arguments for C-SVC on a precomputed kernel (sklearn.svm.SVC defaults)
_SVC_ARGS = dict(svm_type=0, kernel="precomputed", degree=3, gamma=0.0, coef0=0.0, tol=1e-3, nu=0.0, epsilon=0.0,
                 shrinking=1, cache_size=200.0, max_iter=-1)
_PREDICT_ARGS = dict(svm_type=0, kernel="precomputed", degree=3, gamma=0.0, coef0=0.0, cache_size=200.0)
_SEED_MAX = np.iinfo("i").max


def available() -> bool:
    """Whether the direct LIBSVM path can be used (else classifiers.py uses SVC)."""
    return _libsvm is not None


@dataclass(frozen=True)
class Model:
    """A fitted C-SVC: LIBSVM's arrays (internal sign convention) and the labels of its classes."""

    classes_: np.ndarray
    support: np.ndarray
    support_vectors: np.ndarray
    n_support: np.ndarray
    dual_coef: np.ndarray
    intercept: np.ndarray
    prob_a: np.ndarray
    prob_b: np.ndarray

    def _arrays(self) -> tuple:
        return (self.support, self.support_vectors, self.n_support, self.dual_coef, self.intercept, self.prob_a,
                self.prob_b)

    def predict(self, kernel: np.ndarray) -> np.ndarray:
        """Labels by LIBSVM's one-vs-one vote (``SVC.predict``); ``kernel`` is (n_test, n_train)."""
        codes = _libsvm.predict(np.ascontiguousarray(kernel, dtype=np.float64), *self._arrays(), **_PREDICT_ARGS)
        return self.classes_.take(np.asarray(codes, dtype=np.intp))

    def predict_proba(self, kernel: np.ndarray) -> np.ndarray:
        """Platt-scaled pairwise coupling (``SVC.predict_proba``), columns in ``classes_`` order."""
        if self.prob_a.size == 0:
            raise ValueError("predict_proba needs a model fitted with probability=True")
        return _libsvm.predict_proba(np.ascontiguousarray(kernel, dtype=np.float64), *self._arrays(), **_PREDICT_ARGS)


@lru_cache(maxsize=64)
def _libsvm_seed(seed: int) -> int:
    """The seed ``SVC.fit`` hands LIBSVM for ``random_state=seed`` (a RandomState costs 0.25 ms: once)."""
    return int(np.random.RandomState(seed).randint(_SEED_MAX))


def fit(kernel: np.ndarray, y: np.ndarray, C: float, *, probability: bool, seed: int) -> Model:
    """``SVC(kernel="precomputed", C=C, probability=probability, random_state=seed).fit(kernel, y)``.

    ``y`` holds integer labels (at least two distinct); ``kernel`` the (n, n) training Gram matrix.
    """
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"an SVM needs two classes or more; got {len(classes)}")
    _libsvm.set_verbosity_wrap(0)
    support, support_vectors, n_support, dual_coef, intercept, prob_a, prob_b, status, _ = _libsvm.fit(
        np.ascontiguousarray(kernel, dtype=np.float64), np.asarray(codes, dtype=np.float64, order="C"),
        class_weight=np.ones(len(classes)), sample_weight=np.empty(0), C=float(C), probability=int(bool(probability)),
        random_seed=_libsvm_seed(int(seed)), **_SVC_ARGS)
    if not (np.isfinite(intercept).all() and np.isfinite(dual_coef).all()):
        raise ValueError("the SVM's dual coefficients or intercepts are not finite")
    return Model(classes, support, support_vectors, n_support, dual_coef, intercept, prob_a, prob_b)


# ---------------------------------------------------------------------------------------------
# StandardScaler, the same arithmetic


@dataclass(frozen=True)
class Standardizer:
    """``StandardScaler().fit(X)`` / ``.transform``: mean and standard deviation of the training rows.

    Same operations in the same order as scikit-learn (float64 accumulators, the two-pass
    variance with its correction term, near-constant features scaled by 1), so the scaled
    values are bit-identical; the transform keeps the input's float dtype, as StandardScaler does.
    """

    mean_: np.ndarray
    scale_: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> "Standardizer":
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        n = float(X.shape[0])
        acc = {"dtype": np.float64} if X.dtype != np.float64 else {}
        new_sum = np.sum(X, axis=0, **acc)
        count = np.full(X.shape[1], n)
        mean = (np.zeros(X.shape[1]) + new_sum) / count
        temp = X - new_sum / count
        correction = np.sum(temp, axis=0)
        temp **= 2
        unnormalized = np.sum(temp, axis=0)
        unnormalized -= correction ** 2 / count
        var = unnormalized / count
        eps = np.finfo(np.float64).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2
        scale = np.sqrt(var)
        scale[constant] = 1.0
        return cls(mean, scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        out = np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64, copy=True)
        out -= self.mean_.astype(out.dtype)
        out /= self.scale_.astype(out.dtype)
        return out
