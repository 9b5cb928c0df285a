"""Backfill: the streaming detectors run in batch over a history of windows, and an SVG plot."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from huntlab.errors import InputError
from huntlab.stream.detectors import make_detector


def backfill(
    table: pa.Table,
    *,
    time_col: str,
    metric: str,
    keys: list[str] | None = None,
    detector: str = "robust",
    threshold: float = 0.5,
    warmup: int = 30,
) -> pa.Table:
    """Score every row per key in time order, as the stream would have; adds expected/score."""
    keys = keys or []
    missing = [c for c in (time_col, metric, *keys) if c not in table.schema.names]
    if missing:
        raise InputError(
            f"columns {missing} are not in the dataset", f"Its columns: {table.schema.names}"
        )
    table = table.drop_columns(
        [c for c in ("expected", "score", "anomaly") if c in table.schema.names]
    )
    order = [(k, "ascending") for k in keys] + [(time_col, "ascending")]
    table = table.sort_by(order)
    t = _seconds(table.column(time_col))
    x = pc.cast(table.column(metric), pa.float64()).to_numpy(zero_copy_only=False)
    groups = [table.column(k).to_pylist() for k in keys]
    key_of = list(zip(*groups)) if keys else [()] * table.num_rows
    score, expected = np.zeros(len(x)), np.zeros(len(x))
    dets: dict[tuple, object] = {}
    for i, k in enumerate(key_of):
        det = dets.get(k) or dets.setdefault(
            k, make_detector(detector, 0, warmup=warmup, short=1, holdoff=1)
        )
        expected[i] = det.expected_one(t[i])  # type: ignore[attr-defined]
        score[i] = det.update(t[i], x[i])  # type: ignore[attr-defined]
    out = table.append_column("expected", pa.array(expected))
    out = out.append_column("score", pa.array(score))
    return out.append_column("anomaly", pa.array(score >= threshold))


def _seconds(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        us = pc.cast(pc.cast(col, pa.timestamp("us", tz=col.type.tz)), pa.int64())
        return us.to_numpy(zero_copy_only=False) / 1e6
    if pa.types.is_date(col.type):
        return (
            pc.cast(pc.cast(col, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False) * 86400.0
        )
    return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)


def plot_svg(
    t: np.ndarray, x: np.ndarray, expected: np.ndarray, alerts: np.ndarray, title: str, path: Path
) -> Path:
    """A self-contained SVG line chart: the series, what was expected, alerts as red marks."""
    w, h, pad = 900, 320, 40
    t0, t1 = float(t.min()), float(t.max()) or 1.0
    fin = np.concatenate([x[np.isfinite(x)], expected[np.isfinite(expected)]])
    lo, hi = (float(fin.min()), float(fin.max())) if len(fin) else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0

    def px(ti: float) -> float:
        return pad + (w - 2 * pad) * (ti - t0) / ((t1 - t0) or 1.0)

    def py(v: float) -> float:
        return h - pad - (h - 2 * pad) * (v - lo) / (hi - lo)

    def line(vals: np.ndarray) -> str:
        return " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(t, vals) if np.isfinite(b))

    marks = "".join(
        f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="5" fill="none" stroke="#d62728" '
        f'stroke-width="2"><title>alert at {a:.0f}: {b:.4g}</title></circle>'
        for a, b, al in zip(t, x, alerts)
        if al
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="12">'
        f'<rect width="{w}" height="{h}" fill="white"/>'
        f'<text x="{pad}" y="20">{html.escape(title)}</text>'
        f'<text x="{pad}" y="{h - 10}">{lo:.4g} .. {hi:.4g}; {int(alerts.sum())} alert(s)</text>'
        f'<polyline points="{line(expected)}" fill="none" stroke="#999" stroke-dasharray="4 3"/>'
        f'<polyline points="{line(x)}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>'
        f"{marks}</svg>"
    )
    path.write_text(svg, encoding="utf-8")
    return path
