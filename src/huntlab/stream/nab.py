"""The Numenta Anomaly Benchmark: corpus, scoring and results, written from its published rules.

Scoring (Lavin and Ahmad, "Evaluating Real-time Anomaly Detection Algorithms", 2015, and the NAB
whitepaper): a detection is a row whose anomaly_score is at or above the threshold. Inside an
anomaly window only the earliest detection counts, worth A_TP * sigma(y) where y runs from -1 at
the window's start to 0 at its end and sigma(y) = 2 / (1 + exp(5 y)) - 1, divided by
sigma(-1) so that a detection on a window's first row earns exactly A_TP; a window with no
detection costs A_FN. A detection outside every window costs A_FP * sigma(y), y measured from the
end of the preceding window in (window rows - 1) (-1 when no window precedes it or y >= 3). Rows
in the probationary period (the first 15%, at most 750 rows) are not scored, and a window with no
row after it is neither a hit nor a miss. The threshold is the one that maximises the whole
corpus' score, per detector and profile, never per series; the normalised score is
100 * (raw - null) / (perfect - null), where the null detector detects nothing and the perfect
one is A_TP per labelled window. These details follow NAB's reference scorer (`sweeper.py`,
`runner.normalize`), checked rule by rule in tests/stream/test_nab.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from huntlab.errors import InputError
from huntlab.stream.detectors import Detector

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}
PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750  # 15% of NAB's reference length of 5,000 rows


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray | float:
    """NAB's reward curve: ~0.987 at a window's start, 0 at its end, -1 from 3 lengths past it."""
    y = np.asarray(y, dtype=float)
    out = 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0
    return np.where(y >= 3.0, -1.0, out)


MAX_TP = float(scaled_sigmoid(-1.0))  # a detection on a window's first row earns exactly A_TP


@dataclass
class Series:
    """One NAB data file with its anomaly windows as row ranges (inclusive)."""

    name: str  # category/file.csv
    timestamps: np.ndarray  # datetime64[s]
    values: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def category(self) -> str:
        return self.name.split("/")[0]

    def probation(self) -> int:
        n = len(self.values)
        return int(min(math.floor(PROBATION_SHARE * n), PROBATION_MAX_ROWS))

    def reward(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row: unweighted reward (in a window: relative to its first row), window index."""
        n = len(self.values)
        reward = np.full(n, -1.0)
        win = np.full(n, -1, dtype=int)
        idx = np.arange(n)
        for w, (lo, hi) in enumerate(self.windows):
            width = hi - lo + 1
            inside = idx[lo : hi + 1]
            reward[lo : hi + 1] = scaled_sigmoid(-(hi - inside + 1) / width) / MAX_TP
            win[lo : hi + 1] = w
            nxt = self.windows[w + 1][0] if w + 1 < len(self.windows) else n
            after = idx[hi + 1 : nxt]
            reward[hi + 1 : nxt] = scaled_sigmoid(np.abs(hi - after) / max(width - 1, 1))
        reward[: self.probation()] = 0.0
        return reward, win

    def scorable_windows(self) -> list[int]:
        """Windows with at least one row after probation: only these can be hit or missed."""
        p = self.probation()
        return [w for w, (_, hi) in enumerate(self.windows) if hi >= p]


def _parse_ts(text: str) -> np.datetime64:
    return np.datetime64(dt.datetime.fromisoformat(text.strip()).replace(microsecond=0), "s")


def load_series(root: Path, name: str, windows: list[list[str]]) -> Series:
    """Read one `category/file.csv` and place its windows on rows."""
    with open(root / "data" / name, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ts = np.array([_parse_ts(r["timestamp"]) for r in rows])
    values = np.array([float(r["value"]) for r in rows])
    placed = []
    for start, end in windows:
        lo = int(np.searchsorted(ts, _parse_ts(start), side="left"))
        hi = int(np.searchsorted(ts, _parse_ts(end), side="right")) - 1
        if hi >= lo:
            placed.append((lo, hi))
    return Series(name, ts, values, placed)


def load_corpus(root: Path, only: list[str] | None = None) -> list[Series]:
    """Every series of the NAB folder with labels (optionally those whose name contains a word)."""
    labels = root / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise InputError(
            f"NAB labels not found at {labels}",
            "Pass --data pointing at a NAB folder with data/ and labels/combined_windows.json",
        )
    windows = json.loads(labels.read_text(encoding="utf-8"))
    names = [n for n in sorted(windows) if (root / "data" / n).is_file()]
    if only:
        names = [n for n in names if any(o in n for o in only)]
    if not names:
        raise InputError(f"no NAB series under {root / 'data'} match {only or 'anything'}")
    return [load_series(root, n, windows[n]) for n in names]


def run_detector(factory: Callable[[], Detector], series: Series) -> np.ndarray:
    """Anomaly scores of a fresh detector streamed over one series (score, then learn)."""
    det = factory()
    t = series.timestamps.astype("int64").astype(float)
    return np.array([det.update(ti, xi) for ti, xi in zip(t, series.values)])


@dataclass
class Outcome:
    """One series' result at a threshold."""

    raw: float
    tp: int
    fp: int
    fn: int
    tn: int


def score_series(s: Series, scores: np.ndarray, threshold: float, p: dict[str, float]) -> Outcome:
    """NAB's raw score of one series at one threshold."""
    reward, win = s.reward()
    scored = np.arange(len(scores)) >= s.probation()
    hit = (scores >= threshold) & scored
    fp_mask = hit & (win < 0)
    raw = float((reward[fp_mask] * p["fp"]).sum())
    tp = 0
    live = s.scorable_windows()
    for w in live:
        inside = hit & (win == w)
        if inside.any():
            raw += p["tp"] * float(reward[inside].max())
            tp += 1
        else:
            raw -= p["fn"]
    tn = int((~hit & (win < 0) & scored).sum())
    return Outcome(raw, tp, int(fp_mask.sum()), len(live) - tp, tn)


def bounds(corpus: list[Series], p: dict[str, float]) -> tuple[float, float]:
    """(null, perfect) raw scores of a set of series, as NAB's runner normalises them."""
    live = sum(len(s.scorable_windows()) for s in corpus)
    return -p["fn"] * live, p["tp"] * sum(len(s.windows) for s in corpus)


def normalized(raw: float, corpus: list[Series], p: dict[str, float]) -> float:
    null, perfect = bounds(corpus, p)
    return 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0


def best_threshold(corpus: list[Series], scores: list[np.ndarray], p: dict[str, float]) -> float:
    """The threshold maximising the corpus' raw score, by an exact sweep over every score seen."""
    cand, fp, wid = [], [], []
    offset = 0
    live: list[int] = []
    for s, sc in zip(corpus, scores):
        reward, win = s.reward()
        keep = np.arange(len(sc)) >= s.probation()
        cand.append(sc[keep])
        fp.append(np.where(win[keep] < 0, reward[keep] * p["fp"], reward[keep] * p["tp"]))
        wid.append(np.where(win[keep] < 0, -1, win[keep] + offset))
        live += [w + offset for w in s.scorable_windows()]
        offset += len(s.windows)
    c, v, w = np.concatenate(cand), np.concatenate(fp), np.concatenate(wid)
    order = np.argsort(-c, kind="stable")
    best = dict.fromkeys(live, -p["fn"])
    total = -p["fn"] * len(live)
    top, top_thr = total, float(c.max()) + 1.0 if len(c) else 1.0
    for i, j in enumerate(order):
        if w[j] < 0:
            total += v[j]
        elif v[j] > best[w[j]]:
            total += v[j] - best[w[j]]
            best[w[j]] = v[j]
        last_of_tie = i + 1 == len(order) or c[order[i + 1]] != c[j]
        if last_of_tie and total > top:
            top, top_thr = total, float(c[j])
    return top_thr
