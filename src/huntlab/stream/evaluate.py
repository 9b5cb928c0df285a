"""`huntlab anomaly evaluate`: run a detector over NAB, score every profile, write NAB results."""

from __future__ import annotations

import csv
import functools
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from huntlab.stream.detectors import make_detector
from huntlab.stream.nab import (
    PROFILES,
    Series,
    best_threshold,
    load_corpus,
    normalized,
    run_detector,
    score_series,
)


@dataclass
class Evaluation:
    """Normalised scores per profile, overall and per category, with the chosen thresholds."""

    detector: str
    thresholds: dict[str, float] = field(default_factory=dict)
    overall: dict[str, float] = field(default_factory=dict)
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)
    series: int = 0
    rows: int = 0


def _scores_for(name: str, seed: int, s: Series) -> np.ndarray:
    return run_detector(functools.partial(make_detector, name, seed), s)


def score_corpus(
    corpus: list[Series], scores: list[np.ndarray], detector: str
) -> tuple[Evaluation, dict[str, list[tuple[Series, object]]]]:
    """Thresholds per profile across the corpus, then normalised scores per category."""
    ev = Evaluation(detector, series=len(corpus), rows=sum(len(s.values) for s in corpus))
    per_file: dict[str, list[tuple[Series, object]]] = {}
    cats = sorted({s.category for s in corpus})
    for prof, p in PROFILES.items():
        thr = best_threshold(corpus, scores, p)
        outs = [score_series(s, sc, thr, p) for s, sc in zip(corpus, scores)]
        ev.thresholds[prof] = thr
        ev.overall[prof] = normalized(sum(o.raw for o in outs), corpus, p)
        for cat in cats:
            sub = [(s, o) for s, o in zip(corpus, outs) if s.category == cat]
            raw = sum(o.raw for _, o in sub)
            ev.by_category.setdefault(cat, {})[prof] = normalized(raw, [s for s, _ in sub], p)
        per_file[prof] = list(zip(corpus, outs))
    return ev, per_file


def write_results(
    out: Path, ev: Evaluation, corpus: list[Series], scores: list[np.ndarray], per_file: dict
) -> None:
    """NAB's results layout: per series `timestamp,value,anomaly_score,label`, then scores."""
    base = out / ev.detector
    for s, sc in zip(corpus, scores):
        cat, fname = s.name.split("/")
        path = base / cat / f"{ev.detector}_{fname}"
        path.parent.mkdir(parents=True, exist_ok=True)
        label = np.zeros(len(s.values), dtype=int)
        for lo, hi in s.windows:
            label[lo : hi + 1] = 1
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "value", "anomaly_score", "label"])
            for ts, v, a, lab in zip(s.timestamps, s.values, sc, label):
                stamp = str(ts).replace("T", " ")
                w.writerow([stamp, repr(float(v)), f"{a:.6f}", int(lab)])
    head = ["Detector", "Profile", "File", "Threshold", "Score", "TP", "TN", "FP", "FN"]
    for prof, rows in per_file.items():
        with open(base / f"{ev.detector}_{prof}_scores.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*head, "Total_Count"])
            for s, o in rows:
                w.writerow(
                    [
                        ev.detector,
                        prof,
                        s.name,
                        ev.thresholds[prof],
                        o.raw,
                        o.tp,
                        o.tn,
                        o.fp,
                        o.fn,
                        len(s.values),
                    ]
                )
    summary = {
        ev.detector: {
            "thresholds": ev.thresholds,
            "scores": ev.overall,
            "by_category": ev.by_category,
        }
    }
    (base / "final_results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")


def evaluate(
    root: Path,
    detector: str = "context-rest",
    *,
    out: Path | None = None,
    only: list[str] | None = None,
    seed: int = 0,
    workers: int = 2,
) -> Evaluation:
    """Stream a fresh detector over every series, then score all NAB profiles."""
    corpus = load_corpus(root, only)
    make_detector(detector, seed)  # fail fast on an unknown name
    fn = functools.partial(_scores_for, detector, seed)
    if workers > 1 and len(corpus) > 1:
        order = sorted(range(len(corpus)), key=lambda i: -len(corpus[i].values))
        with ProcessPoolExecutor(workers) as pool:
            done = dict(zip(order, pool.map(fn, [corpus[i] for i in order])))
        scores = [done[i] for i in range(len(corpus))]
    else:
        scores = [fn(s) for s in corpus]
    ev, per_file = score_corpus(corpus, scores, detector)
    if out is not None:
        write_results(out, ev, corpus, scores, per_file)
    return ev
