"""Evaluation reports: confusion-matrix and PR-curve PNGs plus a markdown page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from huntlab.errors import MissingDependency
from huntlab.ml.metrics import headline


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependency("matplotlib", "ml") from exc
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def confusion_png(metrics: dict[str, Any], path: Path, title: str) -> Path:
    """A confusion matrix, rows true and columns predicted, counts in the cells."""
    plt = _pyplot()
    labels = metrics["confusion"]["labels"]
    m = np.asarray(metrics["confusion"]["matrix"])
    fig, ax = plt.subplots(figsize=(1.4 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{m[i, j]:,}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=9,
            )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pr_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Precision-recall curves of malicious-vs-benign, one line per model or split."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (y_bin, score) in curves.items():
        p, r, _ = precision_recall_curve(y_bin, score)
        ax.plot(r, p, label=f"{name} (AP {average_precision_score(y_bin, score):.3f})")
    ax.set_xlabel("recall (malicious)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def summary_table(rows: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per evaluation, the headline metrics as columns."""
    cols = ["macro_f1", "roc_auc", "recall@1%fpr", "recall@0.1%fpr"]
    out = ["| evaluation | n | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for name, m in rows.items():
        h = headline(m)
        out.append(f"| {name} | {m.get('n', '')} | " + " | ".join(_fmt(h[c]) for c in cols) + " |")
    return "\n".join(out)


def per_class_table(m: dict[str, Any]) -> str:
    """A markdown table of precision, recall, F1 and support per class."""
    out = ["| class | precision | recall | F1 | n |", "|---|---:|---:|---:|---:|"]
    for c, v in m["per_class"].items():
        out.append(
            f"| {c} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['n']:,} |"
        )
    return "\n".join(out)


def threshold_lines(m: dict[str, Any]) -> str:
    """Thresholds set on validation benign URLs, and what they give on the test set."""
    lines = []
    for k, v in m.items():
        if k.startswith("at_val_fpr_"):
            lines.append(
                f"- threshold for {k.removeprefix('at_val_fpr_')} FPR on validation "
                f"({v['threshold']:.4f}): test FPR {v['fpr']:.4f}, recall {v['recall']:.4f}"
            )
    return "\n".join(lines)


def write_report(
    folder: Path,
    title: str,
    sections: list[tuple[str, str]],
    metrics: dict[str, Any],
) -> Path:
    """report.md (sections of markdown) and metrics.json in `folder`; returns report.md."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    body = [f"# {title}", ""]
    for head, text in sections:
        body += [f"## {head}", "", text, ""]
    path = folder / "report.md"
    path.write_text("\n".join(body), encoding="utf-8")
    return path
