"""Table 12: deep 2D models (station.deep, issue 7) fused with the 3D SVM, 3 classes, LOSO.

``station.deep`` is imported only when ``--models`` is given: PyTorch is an optional extra.
The deep model's out-of-fold LOSO probabilities are fused with the 3D SVM's LOSO probabilities
of the same samples exactly like LBP-TOP: ``P = (1-a) p_deep + a p3D``.  A deep model gives
no inner predictions, so the nested choice of ``a`` is replaced by the "other folds" choice:
each subject's ``a`` is chosen on the other subjects' out-of-fold predictions.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from station.checks import StationError
from station.dataset import Sample
from station.evaluate.baseline import MODALITIES_3D, MODALITY_2D, EvaluationResult
from station.evaluate.fusion import ALPHAS, accuracy_of, fuse, other_folds_predictions
from station.evaluate.loaders import Database
from station.evaluate.metrics import score
from station.evaluate.report import Report, num, pct


def import_deep():
    try:
        import station.deep as deep
    except ModuleNotFoundError as err:
        raise StationError("--models needs the deep baselines (station.deep) and PyTorch: "
                           "install them with `pip install -e .[deep]`.") from err
    return deep


def _light(sample: Sample) -> Sample:
    """The sample without its point clouds: the deep models read 2D only, and 373 samples' clouds
    would not fit in memory together."""
    return replace(sample, cloud_points=np.zeros((0, 3), np.float32), cloud_offsets=np.zeros(1, np.int64))


def deep_table(db: Database, result: EvaluationResult, models: list[str], report: Report, *, work_dir: Path,
               seed: int = 0, progress=None, deep_kwargs: dict | None = None) -> list[dict]:
    """Table 12 rows: LBP-TOP and each deep model, alone and fused with each 3D feature.

    ``deep_kwargs`` go to ``station.deep.oof_probabilities`` unchanged (e.g. a quicker training
    ``config`` in tests); the documented contract needs none.
    """
    deep = import_deep()
    unknown = [m for m in models if m not in deep.MODELS]
    if unknown:
        raise StationError(f"--models: unknown model(s) {', '.join(unknown)}; available: {', '.join(deep.MODELS)}.")
    run = result.runs.get(("3class", "loso"))
    if run is None:
        raise StationError("--models needs the 3-class LOSO evaluation: keep 3class in --label-sets and loso in "
                           "--protocols.")
    ls = result.label_sets["3class"]
    samples = [_light(db.refs[i].load()) for i in ls.index]
    groups = np.array([db.refs[i].record.subject for i in ls.index])
    inputs = [db.refs[i].fingerprint() for i in ls.index]  # the feature cache's keys: one cache policy
    folds = [f.test for f in run.folds]
    n_classes = len(run.classes)
    rows: list[dict] = []
    methods = [(MODALITY_2D, run.oof(MODALITY_2D, 0))]
    for name in models:
        extra = (deep_kwargs or {}).get(name, {})
        p2 = np.asarray(deep.oof_probabilities(name, samples, np.asarray(ls.y).astype(str), groups, seed=seed,
                                               work_dir=Path(work_dir) / name, inputs=inputs, **extra))
        if p2.shape != (len(samples), n_classes):
            raise StationError(f"station.deep.oof_probabilities({name!r}) returned shape {p2.shape}, expected "
                               f"{(len(samples), n_classes)}.")
        methods.append((name, p2))
    for name, p2 in methods:
        s2 = score(run.y, [np.argmax(p2, 1)], [folds], n_classes)
        row = {"method": name, "acc_2d": s2.accuracy, "f1_2d": s2.f1, "uf1_2d": s2.uf1, "uar_2d": s2.uar}
        for m3 in [m for m in MODALITIES_3D.values() if m in run.modalities]:
            p3 = run.oof(m3, 0)
            accs = [accuracy_of(fuse(p2, p3, a), run.y) for a in ALPHAS]
            a_best = float(ALPHAS[int(np.argmax(accs))])
            s_paper = score(run.y, [np.argmax(fuse(p2, p3, a_best), 1)], [folds], n_classes)
            alphas, pred = other_folds_predictions(p2, p3, run.y, folds)
            s_other = score(run.y, [pred], [folds], n_classes)
            row[m3] = {"a": a_best, "paper": s_paper, "other": s_other, "a_other": float(np.mean(alphas))}
        rows.append(row)
    headers = ["method", "2D Acc (%)", "2D macro-F1", "2D UF1", "2D UAR"]
    m3s = [m for m in MODALITIES_3D.values() if rows and m in rows[0]]
    for m3 in m3s:
        headers += [f"+{m3} Acc (%) [paper a]", f"+{m3} macro-F1", "a", f"+{m3} Acc (%) [other-folds a]"]
    table = []
    for row in rows:
        cells = [row["method"], pct(row["acc_2d"]), num(row["f1_2d"]), num(row["uf1_2d"]), num(row["uar_2d"])]
        for m3 in m3s:
            f = row[m3]
            cells += [pct(f["paper"].accuracy), num(f["paper"].f1), f"{f['a']:.1f}", pct(f["other"].accuracy)]
        table.append(cells)
    report.table("table12_deep", "Table 12: deep models with and without 3D (3 classes, LOSO)", headers, table,
                 text="Classes: " + ", ".join(run.classes) + "; 'Others' discarded. 'paper a' is chosen on the whole "
                      "protocol; 'other-folds a' per subject on the other subjects' predictions.")
    return rows
