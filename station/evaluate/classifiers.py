"""The SVM of the baseline: scaling + SVC with probabilities, hyper-parameters chosen inside training folds.

LIBSVM (the paper's classifier) through scikit-learn's :class:`~sklearn.svm.SVC`.  The kernel
matrix is computed with numpy (one BLAS matrix product) and handed to SVC as ``precomputed``:
the same SVM, but an LBP-TOP vector of thousands of bins no longer costs a kernel evaluation
per pair inside LIBSVM, which makes the 133 outer folds x inner grid search of the baseline
run in minutes.  Scaling (StandardScaler) is a Pipeline step, so it is fitted on the training
part of each fold only; so is the grid search over ``C`` (GridSearchCV, inner CV).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from station.evaluate import libsvm

DEFAULT_C_GRID = (0.01, 0.1, 1.0)

# scikit-learn 1.9 deprecates SVC(probability=True) (removal planned for 1.11); it is still LIBSVM's
# Platt scaling, the probabilities the paper's LIBSVM gave.  Silence only that message.
warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated", category=FutureWarning)


def _fit_svc(svc: SVC, kernel: np.ndarray, y: np.ndarray) -> SVC:
    """``svc.fit`` without the probability deprecation message (also under pytest's own filters)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The `probability` parameter", category=FutureWarning)
        return svc.fit(kernel, y)


def kernel_matrix(a: np.ndarray, b: np.ndarray, kernel: str, gamma: float) -> np.ndarray:
    """Linear or RBF kernel between the rows of ``a`` and ``b``."""
    # float32 product: half the time of float64, and far below the SVM's own tolerance.  The astype
    # copies are kept on purpose: with ``a is b`` numpy would call syrk instead of gemm, whose sums
    # differ in the last float32 bit, and the results would no longer equal the earlier releases'
    dot = (a.astype(np.float32) @ b.astype(np.float32).T).astype(np.float64)
    if kernel == "linear":
        return dot
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * dot
    return np.exp(-gamma * np.maximum(sq, 0.0))


def resolve_gamma(gamma: float | str, X: np.ndarray) -> float:
    """scikit-learn's ``gamma='scale'``: 1 / (n_features * X.var())."""
    if gamma != "scale":
        return float(gamma)
    var = X.var()
    return 1.0 / (X.shape[1] * var) if var > 0 else 1.0


class KernelSVC(ClassifierMixin, BaseEstimator):
    """SVC (LIBSVM) with a linear or RBF kernel computed by numpy; ``predict_proba`` by Platt scaling."""

    def __init__(self, C: float = 1.0, kernel: str = "linear", gamma: float | str = "scale",
                 probability: bool = True, random_state: int = 0):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.probability = probability
        self.random_state = random_state

    def _gram(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return kernel_matrix(a, b, self.kernel, self.gamma_)

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        self.X_fit_ = X
        self.gamma_ = resolve_gamma(self.gamma, X)
        self.svc_ = SVC(C=self.C, kernel="precomputed", probability=self.probability,
                        random_state=self.random_state)
        _fit_svc(self.svc_, self._gram(X, X), y)
        self.classes_ = self.svc_.classes_
        return self

    def predict_proba(self, X):
        return self.svc_.predict_proba(self._gram(np.asarray(X, dtype=np.float64), self.X_fit_))

    def predict(self, X):
        if not self.probability:
            return self.svc_.predict(self._gram(np.asarray(X, dtype=np.float64), self.X_fit_))
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def decision_function(self, X):
        return self.svc_.decision_function(self._gram(np.asarray(X, dtype=np.float64), self.X_fit_))


def svm_pipeline(kernel: str = "linear", C: float = 1.0, *, probability: bool = True, seed: int = 0) -> Pipeline:
    """StandardScaler then the SVM: scaling is learnt on whatever the pipeline is fitted on."""
    return Pipeline([("scale", StandardScaler()),
                     ("svm", KernelSVC(C=C, kernel=kernel, probability=probability, random_state=seed))])


def inner_cv(y: np.ndarray, groups: np.ndarray | None, *, grouped: bool, n_splits: int = 3, seed: int = 0):
    """Inner splitter: by subject (GroupKFold) inside LOSO, stratified inside k-fold."""
    if grouped and len(np.unique(groups)) >= 2:  # (one subject left: nothing to group, stratify)
        return GroupKFold(n_splits=min(n_splits, len(np.unique(groups))))
    smallest = np.bincount(np.unique(y, return_inverse=True)[1]).min()
    return StratifiedKFold(max(2, min(n_splits, int(smallest) if smallest >= 2 else n_splits)), shuffle=True,
                           random_state=seed)


def inner_splits_of(y: np.ndarray, groups: np.ndarray | None, *, grouped: bool, seed: int = 0
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of :func:`inner_cv` on labels ``y`` (and ``groups`` if grouped)."""
    cv = inner_cv(y, groups, grouped=grouped, seed=seed)
    return list(cv.split(np.zeros((len(y), 1)), y, groups if grouped else None))


def select_and_fit(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, grouped: bool, kernel: str = "linear",
                   c_grid: tuple[float, ...] = DEFAULT_C_GRID, seed: int = 0) -> tuple[Pipeline, float]:
    """Choose C by GridSearchCV on (X, y) only, then fit the probabilistic SVM with it.

    The search scores accuracy without Platt scaling (probability=False: 6x cheaper); the final
    model is refitted with probabilities.  Returns (model, chosen C).
    """
    cv = inner_cv(y, groups, grouped=grouped, seed=seed)
    search = GridSearchCV(svm_pipeline(kernel, probability=False, seed=seed), {"svm__C": list(c_grid)}, cv=cv,
                          scoring="accuracy", error_score=0.0, refit=False, n_jobs=1)
    search.fit(X, y, groups=groups if grouped else None)
    best_c = float(search.best_params_["svm__C"])
    return svm_pipeline(kernel, best_c, probability=True, seed=seed).fit(X, y), best_c


def aligned_proba(model, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """predict_proba with one column per global class (0 for classes absent from the training fold)."""
    proba = model.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    pos = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model.classes_):
        out[:, pos[c]] = proba[:, j]
    return out


# ---------------------------------------------------------------------------------------------
# lean path: the same computation without GridSearchCV / Pipeline bookkeeping


class FittedSVM:
    """A scaler + probabilistic SVC fitted on one training set (what ``lean_select_and_fit`` returns)."""

    def __init__(self, scaler, train_scaled: np.ndarray, svc, kernel: str, gamma: float):
        self.scaler, self.train_scaled, self.svc, self.kernel, self.gamma = scaler, train_scaled, svc, kernel, gamma
        self.classes_ = svc.classes_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        test = self.scaler.transform(np.asarray(X, dtype=np.float64))
        return self.svc.predict_proba(kernel_matrix(test, self.train_scaled, self.kernel, self.gamma))


def _precomputed_svc(kernel: np.ndarray, y: np.ndarray, C: float, *, probability: bool, seed: int):
    """``SVC(kernel="precomputed", ...).fit(kernel, y)``, through LIBSVM directly when possible (libsvm.py:
    the same fit, without SVC's per-call validation); both have ``predict``, ``predict_proba``, ``classes_``."""
    if libsvm.available():
        return libsvm.fit(kernel, y, C, probability=probability, seed=seed)
    return _fit_svc(SVC(C=C, kernel="precomputed", probability=probability, random_state=seed), kernel, y)


def _scaled_split(X: np.ndarray, train: np.ndarray, test: np.ndarray, kernel: str, gamma: float | str):
    scaler = libsvm.Standardizer.fit(X[train])  # StandardScaler's arithmetic, bit for bit
    a = scaler.transform(X[train])
    g = resolve_gamma(gamma, a) if kernel != "linear" else 0.0  # a linear kernel has no gamma (X.var() skipped)
    k_test = kernel_matrix(scaler.transform(X[test]), a, kernel, g) if len(test) else None
    return scaler, a, g, kernel_matrix(a, a, kernel, g), k_test


def lean_select_and_fit(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, grouped: bool, kernel: str = "linear",
                        c_grid: tuple[float, ...] = DEFAULT_C_GRID, seed: int = 0, n_classes: int | None = None,
                        inner_oof: bool = False, gamma: float | str = "scale",
                        inner_splits: list[tuple[np.ndarray, np.ndarray]] | None = None
                        ) -> tuple[FittedSVM, float, np.ndarray | None]:
    """What :func:`select_and_fit` does, ~10x faster on small folds; optionally inner OOF probabilities.

    Same inner splits, same scaling (StandardScaler's arithmetic on each inner training part),
    same kernel, same LIBSVM settings and the same choice rule as GridSearchCV (best mean inner
    accuracy, first on ties, 0 for a split that cannot be fitted), so the chosen C and the
    probabilities are the same (tests/test_evaluate_classifiers.py).  Each inner split's kernel
    matrix is computed once for all C values, and GridSearchCV's cloning and scikit-learn's
    per-fit validation are skipped (LIBSVM is called directly, libsvm.py): for the ~10^5 small
    fits of a baseline that bookkeeping dominated the run time.  With ``inner_oof``, the inner
    splits also give out-of-fold probabilities of (X, y) with the chosen C.  ``inner_splits``:
    the splits of :func:`inner_splits_of` (they depend on labels and groups only, so a fold computes
    them once for all its features).
    """
    splits = inner_splits if inner_splits is not None else inner_splits_of(y, groups, grouped=grouped, seed=seed)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    split_data = []
    scores: list[list[float]] = [[] for _ in c_grid]
    for train, test in splits:
        data = _scaled_split(X, train, test, kernel, gamma)
        split_data.append((train, test, data))
        _, _, _, k_tr, k_te = data
        for ci, c in enumerate(c_grid):
            if len(np.unique(y[train])) < 2:
                scores[ci].append(0.0)
                continue
            svc = _precomputed_svc(k_tr, y[train], c, probability=False, seed=seed)
            scores[ci].append(float(np.mean(svc.predict(k_te) == y[test])))
    best_c = float(c_grid[int(np.argmax([np.mean(sc) for sc in scores]))])
    everything = np.arange(len(y))
    scaler, a, g, k_all, _ = _scaled_split(X, everything, everything[:0], kernel, gamma)
    svc = _precomputed_svc(k_all, y, best_c, probability=True, seed=seed)
    model = FittedSVM(scaler, a, svc, kernel, g)
    oof = None
    if inner_oof:
        oof = np.zeros((len(y), n_classes))
        for train, test, (_, _, _, k_tr, k_te) in split_data:
            if len(np.unique(y[train])) < 2:
                oof[test] = 1.0 / n_classes
                continue
            inner = _precomputed_svc(k_tr, y[train], best_c, probability=True, seed=seed)
            proba = inner.predict_proba(k_te)
            for j, c in enumerate(inner.classes_):
                oof[test, int(c)] = proba[:, j]
    return model, best_c, oof
