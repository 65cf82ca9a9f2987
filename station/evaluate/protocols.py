"""Validation protocols of the paper: LOSO and 10-fold cross-validation repeated 10 times.

* ``loso``: :class:`~sklearn.model_selection.LeaveOneGroupOut` over subjects; inner model
  selection grouped by subject too.
* ``kfold``: :class:`~sklearn.model_selection.RepeatedStratifiedKFold` (10 x 10 by default, the
  paper averages the 10 runs).  Stratified k-fold puts every class in every test fold, so it
  needs k <= the smallest class count: when the database has fewer, k is lowered to that count
  (at least 2) and the report says so, with the number of folds used.  Classes with fewer than
  ``min_class_size`` (default 3) samples are dropped before any protocol (see labels.py).
* A protocol the data cannot support raises :class:`ProtocolSkipped` with the reason (LOSO with
  one subject, k-fold with a class of one sample); the baseline notes it and goes on.

Every outer fold fits one SVM per feature ("modality": 2D LBP-TOP, 3D SI, HK, SI+HK): C chosen
by an inner grid search on the training part only, then out-of-fold probabilities of the test
part; plus inner out-of-fold probabilities of the training part with the chosen C, from which
the nested fusion weight is chosen (fusion.py).  Folds run in parallel through
:func:`station.parallel.parallel_map` (spawn processes, or Dask when a scheduler is given), by
:func:`run_plans` for the baseline and for the multi-database protocols (composite.py) alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut, RepeatedStratifiedKFold
import sklearn
from threadpoolctl import ThreadpoolController

from station.evaluate.classifiers import (DEFAULT_C_GRID, aligned_proba, inner_cv, inner_splits_of,
                                         lean_select_and_fit, select_and_fit)
from station.parallel import n_workers, parallel_map

PROTOCOLS = ("loso", "kfold")
_THREADPOOLS = ThreadpoolController()  # finding the BLAS libraries costs ~0.2 s: do it once per process
PROTOCOL_TITLES = {"loso": "LOSO", "kfold": "10-fold"}


class ProtocolSkipped(ValueError):
    """The data cannot support this protocol (the message says why)."""


def kfold_splits_for(y: np.ndarray, n_splits: int) -> tuple[int, str]:
    """The k stratified k-fold can use on labels ``y`` (<= the smallest class count) and a note."""
    smallest = int(np.bincount(y).min()) if len(y) else 0
    if smallest < 2:
        raise ProtocolSkipped(f"stratified k-fold needs at least 2 samples in every class; the smallest class "
                              f"has {smallest}")
    if smallest < n_splits:
        return smallest, (f"{n_splits}-fold needs >= {n_splits} samples in every class; the smallest class has "
                          f"{smallest}: {smallest}-fold stratified CV used")
    return n_splits, ""


@dataclass
class FoldResult:
    repeat: int
    train: np.ndarray
    test: np.ndarray
    proba: dict[str, np.ndarray]  # modality -> (n_test, C)
    inner_proba: dict[str, np.ndarray]  # modality -> (n_train, C), inner out-of-fold
    chosen_c: dict[str, float]


@dataclass
class ProtocolRun:
    """Out-of-fold probabilities of every modality under one protocol and label set."""

    protocol: str
    classes: list[str]
    y: np.ndarray  # int codes into classes
    groups: np.ndarray
    folds: list[FoldResult]
    n_repeats: int
    notes: list[str] = field(default_factory=list)
    n_splits: int = 0  # folds per repeat actually used (LOSO: subjects)

    @property
    def modalities(self) -> list[str]:
        return list(self.folds[0].proba) if self.folds else []

    def oof(self, modality: str, repeat: int) -> np.ndarray:
        """(n, C) out-of-fold probabilities of one repeat (every sample is tested once per repeat)."""
        out = np.full((len(self.y), len(self.classes)), np.nan)
        for fold in self.folds:
            if fold.repeat == repeat:
                out[fold.test] = fold.proba[modality]
        return out

    def folds_of(self, repeat: int) -> list[FoldResult]:
        return [f for f in self.folds if f.repeat == repeat]


def splits(protocol: str, y: np.ndarray, groups: np.ndarray, *, n_splits: int = 10, n_repeats: int = 10,
           seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(repeat, train, test) index triples of a protocol."""
    dummy = np.zeros((len(y), 1))
    if protocol == "loso":
        return [(0, tr, te) for tr, te in LeaveOneGroupOut().split(dummy, y, groups)]
    if protocol == "kfold":
        k, _ = kfold_splits_for(y, n_splits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "least populated class has only n members"
            rskf = RepeatedStratifiedKFold(n_splits=k, n_repeats=n_repeats, random_state=seed)
            return [(i // k, tr, te) for i, (tr, te) in enumerate(rskf.split(dummy, y))]
    raise ValueError(f"unknown protocol {protocol!r}")


def _inner_oof(X: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, *, grouped: bool, c: float,
               kernel: str, seed: int) -> np.ndarray:
    """Out-of-fold probabilities inside a training set, with its chosen C (for nested fusion)."""
    from station.evaluate.classifiers import svm_pipeline

    out = np.zeros((len(y), n_classes))
    cv = inner_cv(y, groups, grouped=grouped, seed=seed + 1)
    for tr, te in cv.split(X, y, groups if grouped else None):
        if len(np.unique(y[tr])) < 2:
            out[te] = 1.0 / n_classes
            continue
        model = svm_pipeline(kernel, c, probability=True, seed=seed).fit(X[tr], y[tr])
        out[te] = aligned_proba(model, X[te], np.arange(n_classes))
    return out


def run_fold(features: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray, repeat: int, train: np.ndarray,
             test: np.ndarray, *, protocol: str, n_classes: int, kernel: str = "linear",
             c_grid: tuple[float, ...] = DEFAULT_C_GRID, nested: bool = True, seed: int = 0,
             search: str = "lean") -> FoldResult:
    """One outer fold: per modality, select C on train, fit, predict test (+ inner OOF if nested).

    ``search="sklearn"`` runs Pipeline + GridSearchCV (and a separate inner OOF pass); the default
    ``"lean"`` computes the same selection with one kernel matrix per inner split (classifiers.py).
    """
    grouped = protocol == "loso"
    proba, inner, chosen = {}, {}, {}
    splits_inner = None
    for name, X in features.items():
        if not np.isfinite(X).all():
            raise ValueError(f"feature {name!r} has NaN or infinite values")
    # one BLAS thread per fold: folds already run in parallel, and a multi-threaded BLAS on small
    # kernel matrices of a busy machine is 10-40x slower than a single thread (measured)
    # (inputs are checked once here, so scikit-learn's per-call validation is skipped: it was half
    # of the time of a fold)
    with _THREADPOOLS.limit(limits=1), warnings.catch_warnings(), \
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        warnings.simplefilter("ignore")  # small-class warnings of the inner splitters
        for name, X in features.items():
            if search == "sklearn":
                model, c = select_and_fit(X[train], y[train], groups[train], grouped=grouped, kernel=kernel,
                                          c_grid=c_grid, seed=seed)
                if nested:
                    inner[name] = _inner_oof(X[train], y[train], groups[train], n_classes, grouped=grouped, c=c,
                                             kernel=kernel, seed=seed)
            else:
                if splits_inner is None:  # the same for every feature of this fold
                    splits_inner = inner_splits_of(y[train], groups[train], grouped=grouped, seed=seed)
                model, c, oof = lean_select_and_fit(X[train], y[train], groups[train], grouped=grouped,
                                                    kernel=kernel, c_grid=c_grid, seed=seed, n_classes=n_classes,
                                                    inner_oof=nested, inner_splits=splits_inner)
                if nested:
                    inner[name] = oof
            proba[name] = aligned_proba(model, X[test], np.arange(n_classes))
            chosen[name] = c
    return FoldResult(repeat, train, test, proba, inner, chosen)


@dataclass
class ProtocolPlan:
    """A protocol checked against one label set's data, with its folds: what :func:`run_plans` runs."""

    protocol: str
    classes: list[str]
    y: np.ndarray
    groups: np.ndarray
    specs: list[tuple[int, np.ndarray, np.ndarray]]  # (repeat, train, test)
    n_repeats: int
    n_splits: int
    notes: list[str]
    fold_options: dict
    features: dict[str, np.ndarray]
    description: str = ""


def plan_protocol(features: dict[str, np.ndarray], labels: np.ndarray, groups: np.ndarray, protocol: str, *,
                  n_repeats: int = 10, n_splits: int = 10, kernel: str = "linear",
                  c_grid: tuple[float, ...] = DEFAULT_C_GRID, nested: bool = True, seed: int = 0,
                  search: str = "lean", description: str = "") -> ProtocolPlan:
    """The folds of a protocol on string ``labels`` (raises :class:`ProtocolSkipped` if it cannot run)."""
    classes = sorted(set(np.asarray(labels).tolist()))
    y = np.array([classes.index(v) for v in labels], dtype=np.int64)
    groups = np.asarray(groups)
    notes = []
    if len(classes) < 2:
        raise ProtocolSkipped(f"{len(classes)} class: nothing to classify")
    if protocol == "loso" and len(np.unique(groups)) < 2:
        raise ProtocolSkipped(f"LOSO needs at least two subjects; this label set has {len(np.unique(groups))}")
    used = len(np.unique(groups)) if protocol == "loso" else n_splits
    if protocol == "kfold":
        used, note = kfold_splits_for(y, n_splits)
        if note:
            notes.append(note)
    specs = splits(protocol, y, groups, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    fold_options = dict(protocol=protocol, n_classes=len(classes), kernel=kernel, c_grid=c_grid, nested=nested,
                        seed=seed, search=search)
    return ProtocolPlan(protocol, classes, y, groups, specs, 1 if protocol == "loso" else n_repeats, used, notes,
                        fold_options, features, description or protocol)


def _run_fold_chunk(chunk: tuple) -> list[FoldResult]:
    """Several folds of one plan in one task (module-level so worker processes can load it): the
    label set's features travel to the worker once per chunk instead of once per fold."""
    features, y, groups, options, specs = chunk
    return [run_fold(features, y, groups, *spec, **options) for spec in specs]


def chunk_size(n_folds: int, n_jobs: int) -> int:
    """Folds per task: up to 4, but at least ~8 tasks per worker so the last ones finish together."""
    return max(1, min(4, n_folds // (8 * n_workers(n_jobs))))


def run_plans(plans: list[ProtocolPlan], *, n_jobs: int = 1, progress=None, description: str = "") -> list[ProtocolRun]:
    """Every fold of every plan in one parallel map (one start-up, one tail instead of one per plan),
    results in the plans' and folds' order: the same runs as one :func:`run_protocol` per plan.

    ``progress``: a rich ``Progress`` (one task counting folds) or a callable that hears each
    finished chunk (a list of :class:`FoldResult`)."""
    total = sum(len(plan.specs) for plan in plans)
    size = chunk_size(total, n_jobs)
    chunks, owner = [], []
    for k, plan in enumerate(plans):
        for i in range(0, len(plan.specs), size):
            chunks.append((plan.features, plan.y, plan.groups, plan.fold_options, plan.specs[i:i + size]))
            owner.append(k)
    results = parallel_map(_run_fold_chunk, chunks, jobs=n_jobs, progress=progress,
                           description=description or " + ".join(p.description for p in plans),
                           weights=[len(chunk[-1]) for chunk in chunks])  # a bar counts folds, not chunks
    folds: list[list[FoldResult]] = [[] for _ in plans]
    for k, chunk_result in zip(owner, results):
        folds[k].extend(chunk_result)
    return [ProtocolRun(plan.protocol, plan.classes, plan.y, plan.groups, folds[k], plan.n_repeats, plan.notes,
                        plan.n_splits) for k, plan in enumerate(plans)]


def run_protocol(features: dict[str, np.ndarray], labels: np.ndarray, groups: np.ndarray, protocol: str, *,
                 n_repeats: int = 10, n_splits: int = 10, kernel: str = "linear",
                 c_grid: tuple[float, ...] = DEFAULT_C_GRID, nested: bool = True, seed: int = 0, n_jobs: int = 1,
                 progress=None, description: str = "", search: str = "lean") -> ProtocolRun:
    """Run a protocol on string ``labels``; every modality sees exactly the same folds."""
    plan = plan_protocol(features, labels, groups, protocol, n_repeats=n_repeats, n_splits=n_splits, kernel=kernel,
                         c_grid=c_grid, nested=nested, seed=seed, search=search, description=description)
    return run_plans([plan], n_jobs=n_jobs, progress=progress, description=plan.description)[0]
