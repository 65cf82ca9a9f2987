"""Scores of a protocol's predictions, named and defined as the field defines them.

Every report table names its metric with these labels and every report carries
:data:`DEFINITIONS`.  For one repeat (LOSO has one; 10 x 10-fold has ten), with the
out-of-fold predictions of all its test folds pooled:

* ``accuracy`` — correct / all (pooled over the folds);
* ``uf1`` — UF1 (MEGC 2019): ``mean_c 2TP_c / (2TP_c + FP_c + FN_c)``, TP/FP/FN summed over folds;
* ``uar`` — UAR (MEGC 2019): ``mean_c TP_c / N_c``, the mean per-class recall, pooled;
* ``macro_f1`` — macro-F1 of the pooled predictions (scikit-learn ``f1_score(average="macro")``
  on all folds together).  It equals UF1 whenever every class has test samples, which the
  label sets guarantee; both are kept because papers use both names;
* ``f1_fold_mean`` — the macro-F1 of each test fold (classes present in it), averaged over folds:
  what the station's tables called "F1" before; shown only under that name (LOSO: per subject);
* ``recall`` per class and the confusion matrix (rows true, columns predicted), pooled.

With repeats every number is the mean over repeats (the paper averages its 10 runs),
``accuracy_std`` their spread, the confusion matrix their sum.

Chance levels (:func:`chance_levels`) are what a classifier that ignores the sample scores:
always the majority class, or a uniformly random class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: column label -> definition, for every table and report
DEFINITIONS = {
    "Acc": "accuracy: correct / all predictions, pooled over the test folds (mean over repeats for k-fold)",
    "UF1": "unweighted F1 (MEGC 2019): mean over classes of 2TP/(2TP+FP+FN), TP/FP/FN summed over all folds",
    "UAR": "unweighted average recall (MEGC 2019): mean over classes of TP/N, pooled over all folds",
    "macro-F1": "macro-F1 of the pooled predictions (all folds together); equals UF1 when every class is tested",
    "F1 fold-mean": "macro-F1 of each test fold (classes present in it), averaged over folds (LOSO: subjects)",
    "chance (majority)": "always predicting the most frequent class of the label set",
    "chance (uniform)": "predicting a class uniformly at random (expected value)",
    "recall": "per class: TP / N of that class, pooled over folds",
}


@dataclass
class Scores:
    accuracy: float
    accuracy_std: float
    macro_f1: float
    f1_fold_mean: float
    uf1: float
    uar: float
    recall: np.ndarray  # per class
    confusion: np.ndarray  # (C, C) counts, summed over repeats

    @property
    def f1(self) -> float:
        """The pooled macro-F1 (what "F1" means in the field's tables)."""
        return self.macro_f1

    def row(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "accuracy_std": self.accuracy_std, "uf1": self.uf1, "uar": self.uar,
                "macro_f1": self.macro_f1, "f1_fold_mean": self.f1_fold_mean}


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def macro_f1(y: np.ndarray, pred: np.ndarray, labels: np.ndarray | None = None) -> float:
    """``sklearn.metrics.f1_score(y, pred, labels=labels, average="macro", zero_division=0)`` of int labels.

    The same arithmetic (per label ``2 TP / (N_true + N_pred)``, 0 where both are 0, NaN-mean over
    the labels; ``labels=None``: every label in ``y`` or ``pred``), bit for bit
    (tests/test_evaluate_libsvm.py), without its per-call validation: the baseline scores
    ~10^4 folds and that validation was a quarter of its single-process time.
    """
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if labels is None:
        labels = np.union1d(y, pred)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 0.0
    size = int(max(labels.max(), y.max(initial=0), pred.max(initial=0))) + 1
    tp = np.bincount(y[y == pred], minlength=size)[labels].astype(np.float64)
    denom = np.bincount(y, minlength=size)[labels].astype(np.float64) + \
        np.bincount(pred, minlength=size)[labels].astype(np.float64)
    f = 2.0 * tp / np.where(denom == 0, 1.0, denom)
    f[denom == 0] = 0.0
    return float(np.nanmean(f))


def uf1_uar(cm: np.ndarray) -> tuple[float, float, np.ndarray]:
    """UF1, UAR and per-class recall of a pooled confusion matrix (classes without samples skipped)."""
    tp = np.diag(cm).astype(float)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    present = cm.sum(1) > 0
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    recall = np.where(present, tp / np.where(present, cm.sum(1), 1), np.nan)
    return float(f1[present].mean()), float(np.nanmean(recall)), recall


def score(y: np.ndarray, preds: list[np.ndarray], folds: list[list[np.ndarray]], n_classes: int) -> Scores:
    """Scores of ``preds`` (one full prediction vector per repeat) with that repeat's test folds."""
    accs, f1s, uf1s, uars, recalls = [], [], [], [], []
    cm_total = np.zeros((n_classes, n_classes), dtype=np.int64)
    for pred, rep_folds in zip(preds, folds):
        cm = confusion(y, pred, n_classes)
        cm_total += cm
        accs.append(np.trace(cm) / cm.sum())
        uf1, uar, rec = uf1_uar(cm)
        uf1s.append(uf1)
        uars.append(uar)
        recalls.append(rec)
        f1s.append(np.mean([macro_f1(y[te], pred[te]) for te in rep_folds]))
    # pooled macro-F1 over the classes of y is UF1 bit for bit (per class 2 TP / (N_true + N_pred), same order)
    return Scores(accuracy=float(np.mean(accs)), accuracy_std=float(np.std(accs)), macro_f1=float(np.mean(uf1s)),
                  f1_fold_mean=float(np.mean(f1s)), uf1=float(np.mean(uf1s)), uar=float(np.mean(uars)),
                  recall=np.nanmean(np.stack(recalls), axis=0), confusion=cm_total)


def chance_levels(y: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, UF1 and UAR of the majority-class and the uniform-random classifier on labels ``y``.

    Majority: accuracy ``n_max / N``; UF1 = its class's F1 ``2 n_max / (N + n_max)`` over C; UAR 1/C.
    Uniform (expected): accuracy 1/C; per class precision ``p_c``, recall 1/C, so
    UF1 = ``mean_c 2 p_c (1/C) / (p_c + 1/C)``; UAR 1/C.
    """
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(float)
    counts = counts[counts > 0]
    c, n = len(counts), counts.sum()
    p = counts / n
    n_max = counts.max()
    return {"majority_accuracy": n_max / n, "majority_uf1": 2 * n_max / (n + n_max) / c, "majority_uar": 1 / c,
            "uniform_accuracy": 1 / c, "uniform_uf1": float(np.mean(2 * p / c / (p + 1 / c))), "uniform_uar": 1 / c}
