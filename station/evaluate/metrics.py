"""Scores of a protocol's predictions.

* accuracy: correct / all, pooled over the folds of a repeat;
* F1: macro F1 of each fold's test set (classes present in that fold), averaged over folds;
* UF1 (MEGC 2019): ``mean_c 2TP_c / (2TP_c + FP_c + FN_c)`` with TP/FP/FN summed over all folds;
* UAR (MEGC 2019): ``mean_c TP_c / N_c``, the mean per-class recall, pooled over folds;
* per-class recall and the confusion matrix (rows true, columns predicted), pooled.

For 10 x 10-fold every number is computed per repeat and averaged (the paper averages the 10
runs); ``accuracy_std`` is the spread over repeats; the confusion matrix sums all repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score


@dataclass
class Scores:
    accuracy: float
    accuracy_std: float
    f1: float
    uf1: float
    uar: float
    recall: np.ndarray  # per class
    confusion: np.ndarray  # (C, C) counts

    def row(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "accuracy_std": self.accuracy_std, "f1": self.f1, "uf1": self.uf1,
                "uar": self.uar}


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def uf1_uar(cm: np.ndarray) -> tuple[float, float, np.ndarray]:
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
        f1s.append(np.mean([f1_score(y[te], pred[te], average="macro", zero_division=0) for te in rep_folds]))
    return Scores(accuracy=float(np.mean(accs)), accuracy_std=float(np.std(accs)), f1=float(np.mean(f1s)),
                  uf1=float(np.mean(uf1s)), uar=float(np.mean(uars)), recall=np.nanmean(np.stack(recalls), axis=0),
                  confusion=cm_total)
