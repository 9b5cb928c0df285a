"""Metrics that do not flatter: per class, macro, ROC-AUC, recall at a fixed benign FPR."""

from __future__ import annotations

from typing import Any

import numpy as np

from huntlab.ml.models import BENIGN, UrlClassifier, task_labels

FPR_POINTS = (0.01, 0.001)


def recall_at_fpr(y_bin: np.ndarray, score: np.ndarray, fpr_target: float) -> dict[str, float]:
    """Best recall whose false-positive rate on benign stays within the target."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y_bin, score)
    ok = np.where(fpr <= fpr_target)[0]
    i = ok[np.argmax(tpr[ok])]
    return {"recall": float(tpr[i]), "threshold": float(min(thr[i], 1.0)), "fpr": float(fpr[i])}


def threshold_for_fpr(benign_scores: np.ndarray, fpr_target: float) -> float:
    """The score above which only `fpr_target` of these benign URLs fall (set on validation)."""
    if benign_scores.size == 0:
        return 0.5
    return float(np.quantile(benign_scores, 1.0 - fpr_target, method="higher"))


def evaluate(
    model: UrlClassifier,
    proba: np.ndarray,
    labels: np.ndarray,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """All metrics of one model on one test set (labels are the original four-class names)."""
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    classes = model.classes_
    y_true = task_labels(labels, model.task)
    y_pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    present = [c for c in classes if c in set(y_true.tolist())]
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro")),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "n": int(n[i])}
            for i, c in enumerate(present)
        },
        "confusion": {
            "labels": classes,
            "matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        },
    }
    y_bin = (np.asarray(labels, dtype=object) != BENIGN).astype(int)
    score = model.malicious_score(proba)
    if 0 < y_bin.sum() < len(y_bin):
        out["roc_auc"] = float(roc_auc_score(y_bin, score))
        out["average_precision"] = float(average_precision_score(y_bin, score))
        for fpr in FPR_POINTS:
            out[f"recall_at_{fpr:g}_fpr"] = recall_at_fpr(y_bin, score, fpr)["recall"]
        for name, thr in (thresholds or {}).items():
            flagged = score >= thr
            out[f"at_{name}"] = {
                "threshold": thr,
                "fpr": float(flagged[y_bin == 0].mean()),
                "recall": float(flagged[y_bin == 1].mean()),
            }
    return out


def headline(m: dict[str, Any]) -> dict[str, float | None]:
    """The few numbers a table row shows."""
    return {
        "macro_f1": m.get("macro_f1"),
        "roc_auc": m.get("roc_auc"),
        "recall@1%fpr": m.get("recall_at_0.01_fpr"),
        "recall@0.1%fpr": m.get("recall_at_0.001_fpr"),
    }
