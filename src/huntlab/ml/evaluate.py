"""The full evaluation: grouped and random splits, and cross-collection, with a written report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from huntlab.ml.metrics import evaluate
from huntlab.ml.models import BENIGN, DEFAULT_KINDS
from huntlab.ml.report import (
    confusion_png,
    per_class_table,
    pr_png,
    summary_table,
    threshold_lines,
    write_report,
)
from huntlab.ml.splits import split_indices

if TYPE_CHECKING:
    from huntlab.ml.registry import ModelRecord
    from huntlab.ml.train import LabeledUrls
    from huntlab.workspace import Workspace


def reports_dir(ws: Workspace) -> Path:
    """Where evaluation reports go: the workspace's reports/ folder."""
    return ws.root / "reports"


def model_report(
    ws: Workspace,
    rec: ModelRecord,
    test: dict[str, Any],
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
) -> Path:
    """The report of one trained model version on its held-out test split."""
    folder = reports_dir(ws) / rec.name / f"v{rec.version}"
    folder.mkdir(parents=True, exist_ok=True)
    confusion_png(test, folder / "confusion.png", f"{rec.ref} ({rec.kind}) test confusion")
    pr_png(curves, folder / "pr_curve.png", f"{rec.ref}: malicious vs benign, test split")
    m = rec.metrics
    val_rows = "\n".join(
        f"- {k}: macro F1 {v['macro_f1']:.4f}, ROC-AUC {v.get('roc_auc', float('nan')):.4f}"
        for k, v in m["validation"].items()
    )
    sections = [
        (
            "Model",
            f"{rec.ref}: {rec.kind}, task {rec.task}, split {m['split']} "
            f"(rows {m['rows']}), chosen by {m['chosen_by']}; training data {rec.training_data}",
        ),
        ("Candidates on validation", val_rows),
        ("Test", summary_table({"test": test})),
        ("Per class (test)", per_class_table(test)),
        ("Thresholds from validation benign URLs", threshold_lines(test)),
        ("Plots", "![confusion](confusion.png)\n\n![PR curve](pr_curve.png)"),
    ]
    return write_report(folder, f"URL model {rec.ref}", sections, m)


def _fit_eval(
    feats: Any,
    data: LabeledUrls,
    train: np.ndarray,
    test: np.ndarray,
    task: str,
    kinds: list[str],
    seed: int,
    params: dict[str, Any],
    val: np.ndarray | None = None,
) -> dict[str, tuple[dict[str, Any], np.ndarray, Any]]:
    """Fit the kinds on `train`, evaluate each on `test` (thresholds from `val` benign if given)."""
    from huntlab.ml.train import fit_candidates, val_thresholds

    fitted = fit_candidates(feats.take(train), data.labels[train], task, kinds, seed, params)
    tf = feats.take(test)
    vf = feats.take(val) if val is not None and len(val) else None
    out = {}
    for kind, model in fitted.items():
        thr = None
        if vf is not None:
            if params.get("tune_bias", True):
                model.tune_class_bias(vf, data.labels[val])
            thr = val_thresholds(model, model.predict_proba_features(vf), data.labels[val])
        proba = model.predict_proba_features(tf)
        out[kind] = (evaluate(model, proba, data.labels[test], thr), proba, model)
    return out


def full_evaluation(
    data: LabeledUrls,
    spec: Any,
    folder: Path,
    *,
    kinds: list[str] | None = None,
    seed: int = 7,
    params: dict[str, Any] | None = None,
    cross_collection: bool = True,
    say: Any = print,
) -> dict[str, Any]:
    """Grouped and random splits (multiclass), and leave-one-collection-out (binary)."""
    kinds = kinds or DEFAULT_KINDS
    params = params or {}
    folder.mkdir(parents=True, exist_ok=True)
    feats = spec.compute(data.urls)
    groups = np.asarray(feats.reg_domains.to_pylist(), dtype=object)
    results: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for how in ("grouped", "random"):
        tr, va, te = split_indices(groups, data.labels, how, seed=seed)
        say(f"{how} split: train {len(tr):,}, validation {len(va):,}, test {len(te):,}")
        res = _fit_eval(feats, data, tr, te, "multiclass", kinds, seed, params, va)
        for kind, (m, proba, model) in res.items():
            results[f"{how}/{kind}"] = m
            rows[f"{how} split, {kind}"] = m
            curves[f"{how}/{kind}"] = (
                (data.labels[te] != BENIGN).astype(int),
                model.malicious_score(proba),
            )
            if kind == "blend" or len(res) == 1:
                confusion_png(m, folder / f"confusion_{how}.png", f"{how} split, {kind}")
        say(summary_table({f"{how}/{k}": v[0] for k, v in res.items()}))
    if cross_collection:
        for hold in sorted(set(data.collections.tolist())):
            te = np.where(data.collections == hold)[0]
            rest = np.where(data.collections != hold)[0]
            if len(te) == 0 or len(rest) == 0:
                continue
            u = np.isin(np.arange(len(groups)), rest) & (_unit(groups, seed) < 0.15)
            va = np.where(u)[0]
            tr = np.setdiff1d(rest, va)
            say(f"cross-collection -> {hold}: train {len(tr):,}, test {len(te):,}")
            res = _fit_eval(feats, data, tr, te, "binary", kinds, seed, params, va)
            for kind, (m, _p, _m) in res.items():
                results[f"cross/{hold}/{kind}"] = m
                rows[f"train on others, test {hold}, {kind}"] = m
            say(summary_table({f"->{hold}/{k}": v[0] for k, v in res.items()}))
    pr_png(
        {k: v for k, v in curves.items()},
        folder / "pr_curves.png",
        "malicious vs benign, test splits",
    )
    sections = [
        (
            "Data",
            f"{len(data.labels):,} URLs; collections {_counts(data.collections)}; "
            f"classes {_counts(data.labels)}",
        ),
        ("Summary", summary_table(rows)),
        ("How to read it", _HOW_TO_READ),
    ]
    for key, m in results.items():
        shown = key.endswith(("/blend", "/balanced_blend", "/balanced_lr"))
        if shown and not key.startswith("cross"):
            sections.append((f"Per class, {key}", per_class_table(m) + "\n\n" + threshold_lines(m)))
        if key.startswith("cross") and shown:
            sections.append((f"Thresholds, {key}", threshold_lines(m)))
    sections.append(
        (
            "Plots",
            "![PR](pr_curves.png)\n\n![grouped](confusion_grouped.png)\n\n"
            "![random](confusion_random.png)",
        )
    )
    write_report(folder, "URL classifier evaluation", sections, results)
    return results


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {str(k): int(c) for k, c in zip(keys, counts)}


def _unit(groups: np.ndarray, seed: int) -> np.ndarray:
    from huntlab.ml.splits import domain_unit

    return domain_unit(groups, seed + 1)


_HOW_TO_READ = (
    "Grouped: no registered domain is in both train and test (the honest estimate for new sites). "
    "Random: domains leak between train and test (flattering, shown for comparison). "
    "Cross-collection: trained on the other collections, tested on one never seen, binary "
    "malicious-vs-benign (only ISCX has malware and spam). recall@FPR columns use the best "
    "threshold on the test set itself; the 'threshold ... from validation' lines use a "
    "threshold fixed on validation benign URLs, which is what deployment would see."
)
