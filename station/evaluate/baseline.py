"""The paper's baseline (4.3) as one function: features, protocols, SVMs, fusion, scores.

``run_baseline`` returns an :class:`EvaluationResult`: long-form rows (one per label set x
protocol x method) plus confusion matrices and fusion curves, which report.py turns into the
paper-shaped tables, CSV, PNG and HTML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.evaluate.cache import FeatureCache, feature_matrices, lbptop_matrices
from station.evaluate.classifiers import DEFAULT_C_GRID
from station.evaluate.fusion import ALPHAS, alpha_curve, nested_predictions, paper_predictions
from station.evaluate.labels import LabelSet, make_label_set
from station.evaluate.loaders import Database
from station.evaluate.metrics import Scores, score
from station.evaluate.protocols import PROTOCOLS, ProtocolPlan, ProtocolRun, ProtocolSkipped, plan_protocol, run_plans
from station.features.landmarks23 import CurvatureParams
from station.features.lbptop import LbpTopParams
from station.vocab.classes import LABEL_SETS

MODALITY_2D = "LBP-TOP"
MODALITIES_3D = {"si": "SI", "hk": "HK", "sihk": "SI+HK"}


@dataclass
class EvalOptions:
    lbptop: LbpTopParams = field(default_factory=LbpTopParams)
    curvature: CurvatureParams = field(default_factory=CurvatureParams)
    label_sets: tuple[str, ...] = LABEL_SETS
    protocols: tuple[str, ...] = PROTOCOLS
    n_repeats: int = 10
    n_splits: int = 10
    kernel: str = "linear"
    c_grid: tuple[float, ...] = DEFAULT_C_GRID
    use_3d: bool = True
    nested: bool = True
    min_class_size: int = 3
    seed: int = 0
    n_jobs: int = 1
    search: str = "lean"  # or "sklearn": Pipeline + GridSearchCV (same result, slower)


@dataclass
class EvaluationResult:
    rows: list[dict] = field(default_factory=list)
    confusions: dict[tuple[str, str, str], tuple[list[str], np.ndarray]] = field(default_factory=dict)
    recalls: list[dict] = field(default_factory=list)
    curves: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    runs: dict[tuple[str, str], ProtocolRun] = field(default_factory=dict)
    label_sets: dict[str, LabelSet] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # "subject/sample" -> why it was skipped
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (label set, protocol, reason)
    #: (sample, note) of every loading fallback (the loader's ``Database.notes``) and skipped sample
    loading_notes: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label_set: str, protocol: str, method: str, fusion: str, a: float | str, scores: Scores,
            classes: list[str], n: int) -> None:
        self.rows.append({"label_set": label_set, "protocol": protocol, "method": method, "fusion": fusion,
                          "a": a, "n_samples": n, "n_classes": len(classes), **scores.row()})
        self.confusions[(label_set, protocol, f"{method}" + (f" ({fusion} a)" if fusion != "-" else ""))] = (
            classes, scores.confusion)
        for c, r in zip(classes, scores.recall):
            self.recalls.append({"label_set": label_set, "protocol": protocol, "method": method, "fusion": fusion,
                                 "class": c, "recall": float(r)})

    def get(self, label_set: str, protocol: str, method: str, fusion: str = "-") -> dict | None:
        for row in self.rows:
            if (row["label_set"], row["protocol"], row["method"], row["fusion"]) == (label_set, protocol, method,
                                                                                   fusion):
                return row
        return None


def label_set_of(db: Database, name: str, min_class_size: int) -> LabelSet:
    records = db.records
    return make_label_set(name, [r.objective_class for r in records], [r.nonobjective_class for r in records],
                          [getattr(r, db.three_class_field) for r in records], min_class_size)


def extract_features(db: Database, options: EvalOptions, cache: FeatureCache, progress=None,
                     failures: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """{'LBP-TOP': X2d, 'SI': ..., 'HK': ..., 'SI+HK': ...} for every sample of the database.

    With ``failures`` a sample that cannot be loaded gets NaN rows and its reason there
    (:func:`without_failed` then drops it); without, the first failure raises.
    """
    if options.use_3d and db.has_3d:  # both from one read of each sample
        x2d, cur = feature_matrices(db, options.lbptop, options.curvature, cache=cache, n_jobs=options.n_jobs,
                                    progress=progress, failures=failures)
        features = {MODALITY_2D: x2d}
        features.update({MODALITIES_3D[k]: cur[k] for k in ("si", "hk", "sihk")})
    else:
        lbp = lbptop_matrices(db, options.lbptop, cache=cache, n_jobs=options.n_jobs, progress=progress,
                              failures=failures)
        features = {MODALITY_2D: next(iter(lbp.values()))}
    return features


def without_failed(db: Database, features: dict[str, np.ndarray],
                   failures: dict[str, str]) -> tuple[Database, dict[str, np.ndarray]]:
    """The database and feature rows without the samples that failed (every modality alike)."""
    from station.evaluate.cache import sample_name

    keep = np.array([sample_name(ref) not in failures for ref in db.refs], bool)
    if keep.all():
        return db, features
    return (dataclasses.replace(db, refs=[ref for ref, k in zip(db.refs, keep) if k]),
            {m: X[keep] for m, X in features.items()})


def evaluate_features(db: Database, features: dict[str, np.ndarray], options: EvalOptions, progress=None,
                      result: EvaluationResult | None = None, fuse: bool = True) -> EvaluationResult:
    """Protocols x label sets on precomputed features; fusion of LBP-TOP with every 3D feature."""
    result = result or EvaluationResult()
    subjects = np.array([r.subject for r in db.records])
    plans: list[tuple[str, ProtocolPlan]] = []
    for name in options.label_sets:
        ls = label_set_of(db, name, options.min_class_size)
        result.label_sets[name] = ls
        for reason, count in ls.dropped.items():
            result.notes.append(f"{name}: {count} sample(s) left out: {reason}")
        if len(ls.classes) < 2:
            reason = (f"{len(ls.classes)} class(es) with >= {options.min_class_size} samples "
                      f"({', '.join(ls.classes) or 'none'}): a label set needs two")
            result.notes.append(f"{name}: skipped, {reason}")
            result.skipped.extend((name, p, reason) for p in options.protocols)
            continue
        feats = {m: X[ls.index] for m, X in features.items()}
        groups = subjects[ls.index]
        for protocol in options.protocols:
            try:
                plan = plan_protocol(feats, ls.y, groups, protocol, n_repeats=options.n_repeats,
                                     n_splits=options.n_splits, kernel=options.kernel, c_grid=options.c_grid,
                                     nested=options.nested and fuse and len(feats) > 1, seed=options.seed,
                                     search=options.search, description=f"{name} {protocol} ({len(ls.y)} samples)")
            except ProtocolSkipped as why:
                result.notes.append(f"{name} {protocol}: skipped, {why}")
                result.skipped.append((name, protocol, str(why)))
                continue
            result.notes.extend(f"{name} {protocol}: {note}" for note in plan.notes)
            plans.append((name, plan))
    # every fold of every label set and protocol in one parallel map: both cores busy to the end
    description = f"{len(plans)} protocol run(s), {sum(len(p.specs) for _, p in plans)} folds"
    runs = run_plans([plan for _, plan in plans], n_jobs=options.n_jobs, progress=progress,
                     description=description) if plans else []
    for (name, _), run in zip(plans, runs):
        result.runs[(name, run.protocol)] = run
        summarise_run(run, name, result, fuse=fuse)
    return result


def summarise_run(run: ProtocolRun, label_set: str, result: EvaluationResult, fuse: bool = True) -> None:
    folds = [[f.test for f in run.folds_of(r)] for r in range(run.n_repeats)]
    n_classes = len(run.classes)
    for m in run.modalities:
        preds = [np.argmax(run.oof(m, r), axis=1) for r in range(run.n_repeats)]
        result.add(label_set, run.protocol, m, "-", 1.0 if m != MODALITY_2D else 0.0,
                   score(run.y, preds, folds, n_classes), run.classes, len(run.y))
    if not fuse or MODALITY_2D not in run.modalities:
        return
    for m3 in [m for m in run.modalities if m != MODALITY_2D]:
        method = f"{MODALITY_2D} + {m3}"
        result.curves[(label_set, run.protocol, m3)] = alpha_curve(run, MODALITY_2D, m3)
        a, preds = paper_predictions(run, MODALITY_2D, m3)
        result.add(label_set, run.protocol, method, "paper", a, score(run.y, preds, folds, n_classes),
                   run.classes, len(run.y))
        if run.folds and run.folds[0].inner_proba:
            alphas, preds = nested_predictions(run, MODALITY_2D, m3)
            result.add(label_set, run.protocol, method, "nested", f"{np.mean(alphas):.2f}±{np.std(alphas):.2f}",
                       score(run.y, preds, folds, n_classes), run.classes, len(run.y))


def run_baseline(db: Database, options: EvalOptions, cache: FeatureCache | Path | None,
                 progress=None) -> EvaluationResult:
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    failures: dict[str, str] = {}
    features = extract_features(db, options, cache, progress, failures)
    db, features = without_failed(db, features, failures)
    result = EvaluationResult()
    result.failures = failures
    result.notes.extend(f"sample {name}: skipped, {why}" for name, why in failures.items())
    if db.refs:
        result = evaluate_features(db, features, options, progress, result=result)
    else:
        result.notes.append("no sample could be loaded: nothing to evaluate")
    if not (options.use_3d and db.has_3d):
        result.notes.append("2D only: " + ("the database has no point clouds" if not db.has_3d else "--no-3d"))
    result.notes.extend(f"label set {name}: {what}" for name, what in getattr(db, "label_sources", {}).items())
    if getattr(db, "images", ""):
        result.notes.append(f"images: {db.images}")
    result.loading_notes = [(getattr(n, "sample", ""), getattr(n, "text", str(n))) for n in db.notes]
    result.loading_notes += [(name, f"skipped: {why}") for name, why in failures.items()]
    return result


__all__ = ["ALPHAS", "EvalOptions", "EvaluationResult", "run_baseline", "evaluate_features", "extract_features"]
