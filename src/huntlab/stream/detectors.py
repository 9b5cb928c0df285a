"""Streaming anomaly detectors: learn one observation, score one, pickle the state.

Every detector measures surprise in robust standard deviations (`z`, never negative) and maps it
to a score in [0, 1) with `score_from_z`; the same scale lets an `Ensemble` combine them. State is
plain Python and numpy, so a detector pickles into a checkpoint as it is. Bounded buffers are
plain lists trimmed by `push` (not deques): pickle writes a list in C, while every deque costs a
Python-level reduction, and a stream processor checkpoints thousands of detectors a second.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from huntlab.errors import InputError

_MAD_TO_SD = 1.4826
WEEK_S = 7 * 86_400
REFRESH = 16


def score_from_z(z: float) -> float:
    """Surprise in robust standard deviations -> a score in [0, 1), strictly monotone in z.

    z / (z + 4) keeps even enormous surprises apart (1 - exp(-z) rounds them all to 1.0), so a
    threshold can still be chosen between them.
    """
    z = max(z, 0.0)
    return z / (z + 4.0) if math.isfinite(z) else 1.0


def push(buf: list, x: Any, maxlen: int) -> None:
    """Append x to a bounded buffer, dropping the oldest item beyond maxlen (like a deque)."""
    buf.append(x)
    if len(buf) > maxlen:
        del buf[0]


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _mean(values: list[float]) -> float:
    """np.mean of a list, bit for bit, without numpy's per-call cost for the few members of an
    ensemble (numpy adds fewer than 8 values in order; more go to numpy's pairwise sum)."""
    if len(values) >= 8:
        return float(np.mean(values))
    total = values[0]
    for v in values[1:]:
        total += v
    return total / len(values)


def _robust(values: Any) -> tuple[float, float]:
    """Median and MAD-based standard deviation of a buffer (plain Python for small ones)."""
    if len(values) > 64:
        a = np.array(values, float)
        med = float(np.median(a))
        return med, _MAD_TO_SD * float(np.median(np.abs(a - med)))
    vals = list(values)
    med = _median(vals)
    return med, _MAD_TO_SD * _median([abs(v - med) for v in vals])


class Detector(ABC):
    """The contract: `score_one` before `learn_one` for each observation, in time order."""

    name: ClassVar[str] = "detector"
    default_holdoff: ClassVar[int] = 300  # rows a detection damps smaller ones (see score_one)
    __slotnames__: ClassVar[list[str]] = []  # spares pickle a per-object lookup (no __slots__)
    tracks_surprise = True  # members of an ensemble leave this to the ensemble

    def __init__(
        self, warmup: int = 30, history: int = 1000, short: int = 5, holdoff: int = 300
    ) -> None:
        self.warmup = warmup
        self.seen = 0
        # Recent surprises: a new one counts by how unusual it is for this series (HTM's
        # "anomaly likelihood" idea), so a noisy series does not alarm all the time.
        self.history, self.short, self.holdoff = history, short, holdoff  # the buffers' bounds
        self.z_hist: list[float] = []
        self.z_short: list[float] = []
        self._z_stats = (0.0, 1.0)
        self._pending: tuple[float, float, float] | None = None
        self.s_recent: list[float] = []

    @abstractmethod
    def z_one(self, t: float, x: float) -> float:
        """Surprise of x at time t (epoch seconds) in robust standard deviations."""

    @abstractmethod
    def expected_one(self, t: float) -> float:
        """What the detector expected at time t (for alerts and plots)."""

    @abstractmethod
    def _learn(self, t: float, x: float) -> None: ...

    def _z(self, t: float, x: float) -> float:
        if self._pending is not None and self._pending[:2] == (t, x):
            return self._pending[2]
        z = self.z_one(t, x) if self.seen >= self.warmup and math.isfinite(x) else 0.0
        z = math.log1p(min(z, 1e12))  # heavy tails compressed: one huge z must not rule
        self._pending = (t, x, z)
        return z

    def learn_one(self, t: float, x: float) -> None:
        """Fold one observation into the state."""
        x = float(x)
        if not math.isfinite(x):
            return
        if self.tracks_surprise:  # an ensemble's member leaves this to the ensemble
            z = self._z(t, x)
            if self.seen >= self.warmup:
                push(self.z_hist, z, self.history)
                push(self.z_short, z, self.short)
                if self.seen % REFRESH == 0 or len(self.z_hist) in (20, 40, 60):
                    zs = np.array(self.z_hist, float)
                    self._z_stats = (float(zs.mean()), float(zs.std()))
            push(self.s_recent, self.surprise(t, x), self.holdoff)
        self._learn(t, x)
        self._pending = None
        self.seen += 1

    def surprise(self, t: float, x: float) -> float:
        """How unusual the recent surprise (mean z of the last few) is for this series."""
        if self.seen < self.warmup or not math.isfinite(x) or len(self.z_hist) < 10:
            return 0.0
        z = self._z(t, float(x))
        short = (sum(self.z_short) + z) / (len(self.z_short) + 1)
        mean, sd = self._z_stats
        return max(0.0, (short - mean) / max(sd, 0.25))

    def score_one(self, t: float, x: float) -> float:
        """Anomaly score in [0, 1) of x at time t; 0 while warming up.

        A surprise that is not above every recent one scores a tenth: an anomaly alarms when
        it starts, not on every point while it lasts (NAB counts the first detection only, and
        on-call people too).
        """
        sup = self.surprise(t, float(x))
        recent = max(self.s_recent, default=0.0)
        return score_from_z(sup if sup > recent else 0.1 * sup)

    def update(self, t: float, x: float) -> float:
        """Score, then learn: what a stream does with each new observation."""
        s = self.score_one(t, x)
        self.learn_one(t, x)
        return s

    def explain(self, t: float, x: float) -> str:
        """One line on why x at t scores as it does."""
        return f"{self.name}: observed {x:.4g}, expected {self.expected_one(t):.4g}"


class SeasonalMAD(Detector):
    """Median and MAD per hour-of-week bucket (robust to outliers), with a global fallback."""

    name = "seasonal"

    def __init__(
        self,
        bucket_s: int = 3600,
        period_s: int = WEEK_S,
        per_bucket: int = 12,
        min_bucket: int = 4,
        global_n: int = 512,
        warmup: int = 30,
        poisson: bool = False,
    ) -> None:
        super().__init__(warmup)
        self.poisson = poisson
        self.bucket_s, self.period_s = bucket_s, period_s
        self.per_bucket, self.min_bucket = per_bucket, min_bucket
        self.global_n = global_n
        self.buckets: dict[int, list[float]] = {}
        self.recent: list[float] = []
        self._global = (0.0, 0.0)  # refreshed every REFRESH observations: medians are costly
        self._cached: tuple[float, tuple[float, float]] | None = None

    def _bucket(self, t: float) -> int:
        return int((t % self.period_s) // self.bucket_s)

    def _stats(self, t: float) -> tuple[float, float]:
        if self._cached is not None and self._cached[0] == t:
            return self._cached[1]
        self._cached = (t, self._compute(t))
        return self._cached[1]

    def _compute(self, t: float) -> tuple[float, float]:
        gmed, gsd = self._global
        floor = max(0.1 * gsd, 1e-3 * abs(gmed), 1e-9)
        b = self.buckets.get(self._bucket(t))
        if b is not None and len(b) >= self.min_bucket:
            med, sd = _robust(b)
            return med, max(sd, floor)
        return gmed, max(gsd, floor)

    def z_one(self, t: float, x: float) -> float:
        med, sd = self._stats(t)
        if self.poisson:  # counts: never trust a spread below the Poisson noise of the median
            sd = max(sd, math.sqrt(max(med, 1.0)))
        return abs(x - med) / sd

    def expected_one(self, t: float) -> float:
        return self._stats(t)[0] if self.recent else 0.0

    def _learn(self, t: float, x: float) -> None:
        push(self.buckets.setdefault(self._bucket(t), []), x, self.per_bucket)
        push(self.recent, x, self.global_n)
        self._cached = None
        if self.seen % REFRESH == 0 or self.seen in (4, 8, self.warmup - 1):
            self._global = _robust(self.recent)


class HoltEWMA(Detector):
    """Exponentially weighted level and trend (Holt), residuals scaled by their EW deviation."""

    name = "ewma"

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.05,
        gamma: float = 0.02,
        warmup: int = 30,
        poisson: bool = False,
    ) -> None:
        super().__init__(warmup)
        self.poisson = poisson
        if not (0 < alpha <= 1 and 0 <= beta <= 1 and 0 < gamma <= 1):
            raise InputError("ewma needs 0 < alpha <= 1, 0 <= beta <= 1, 0 < gamma <= 1")
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.level: float | None = None
        self.trend = 0.0
        self.var = 0.0
        self.scale = 0.0  # EW mean absolute value: a floor for a flat series' deviation

    def expected_one(self, t: float) -> float:
        return 0.0 if self.level is None else self.level + self.trend

    def z_one(self, t: float, x: float) -> float:
        sd = math.sqrt(self.var)
        floor = max(1e-3 * self.scale, 1e-9)
        if self.poisson:
            floor = max(floor, math.sqrt(max(self.expected_one(t), 1.0)))
        return abs(x - self.expected_one(t)) / max(sd, floor)

    def _learn(self, t: float, x: float) -> None:
        if self.level is None:
            self.level, self.scale = x, abs(x)
            return
        r = x - (self.level + self.trend)
        # A residual far out is clipped before it enters the variance, so one spike does not
        # blind the detector to the next.
        sd = math.sqrt(self.var) or abs(r)
        rc = max(-6 * sd, min(6 * sd, r)) if self.seen > self.warmup else r
        self.var = (1 - self.gamma) * self.var + self.gamma * rc * rc
        self.scale = (1 - self.gamma) * self.scale + self.gamma * abs(x)
        prev = self.level
        self.level = self.alpha * x + (1 - self.alpha) * (self.level + self.trend)
        self.trend = self.beta * (self.level - prev) + (1 - self.beta) * self.trend


class KNNShape(Detector):
    """Learned: distance of the recent shape (lagged values) to its k nearest past shapes.

    The memory holds the last `recent` shapes and a seeded reservoir sample of older ones; the
    distance is turned into robust z against the distances seen before (a conformal score).
    """

    name = "knn"

    def __init__(
        self,
        lags: int = 8,
        k: int = 3,
        recent: int = 400,
        reservoir: int = 200,
        history: int = 400,
        seed: int = 0,
        warmup: int = 60,
    ) -> None:
        super().__init__(max(warmup, lags + k + 2))
        self.lags, self.k = lags, k
        self.window: list[float] = []
        self.memory = np.zeros((recent + reservoir, lags))  # ring of recent, then reservoir
        self.recent, self.reservoir = recent, reservoir
        self.stored = 0  # shapes ever stored
        self.kept = 0  # shapes in the reservoir
        self.n_dists = history
        self.dists: list[float] = []
        self.values: list[float] = []
        self.scale = 1.0
        self.dist_stats = (0.0, 0.0)
        self.rng = np.random.default_rng(seed)
        self._last: tuple[float, float, float | None] | None = None

    def _shape(self, x: float) -> np.ndarray | None:
        if len(self.window) < self.lags - 1:
            return None
        v = np.empty(self.lags)
        v[:-1] = self.window[-(self.lags - 1) :]
        v[-1] = x
        return v

    def _distance(self, t: float, x: float) -> float | None:
        if self._last is not None and self._last[:2] == (t, x):
            return self._last[2]
        v = self._shape(x)
        n = min(self.stored, self.recent)
        d = None
        if v is not None and n - self.lags + self.kept >= self.k:
            dist = np.sqrt(((self.memory - v) ** 2).mean(axis=1)) / self.scale
            dist[n : self.recent] = np.inf  # empty slots
            dist[self.recent + self.kept :] = np.inf
            newest = (self.stored - 1) % self.recent
            dist[(newest - np.arange(min(self.lags, n))) % self.recent] = np.inf  # overlapping
            d = float(np.partition(dist, self.k - 1)[: self.k].mean())
        self._last = (t, x, d)
        return d

    def z_one(self, t: float, x: float) -> float:
        d = self._distance(t, x)
        if d is None or len(self.dists) < 10:
            return 0.0
        med, sd = self.dist_stats
        return max(0.0, (d - med) / max(sd, 0.05 * med, 1e-6))

    def expected_one(self, t: float) -> float:
        return float(np.median(self.values)) if self.values else 0.0

    def _learn(self, t: float, x: float) -> None:
        d = self._distance(t, x)
        v = self._shape(x)
        if d is not None:
            push(self.dists, d, self.n_dists)
        if v is not None:
            slot = self.stored % self.recent
            if self.stored >= self.recent:
                self._keep_old(self.memory[slot].copy())
            self.memory[slot] = v
            self.stored += 1
        push(self.window, x, self.lags)
        push(self.values, x, 512)
        self._last = None
        if self.seen % REFRESH == 0 or self.seen in (8, 16, self.warmup - 1):
            med, sd = _robust(self.values)
            self.scale = max(sd, 1e-3 * abs(med), 1e-9)
            if self.dists:
                self.dist_stats = _robust(self.dists)

    def _keep_old(self, v: np.ndarray) -> None:
        """Reservoir sampling of shapes leaving the recent memory (seeded: deterministic)."""
        evicted = self.stored - self.recent + 1
        if self.kept < self.reservoir:
            self.memory[self.recent + self.kept] = v
            self.kept += 1
        else:
            j = int(self.rng.integers(0, evicted))
            if j < self.reservoir:
                self.memory[self.recent + j] = v


class Ensemble(Detector):
    """Combines detectors' z: 'mean', 'max' or 'median' (each member learns every point)."""

    name = "ensemble"

    def __init__(
        self,
        members: list[Detector],
        how: str = "mean",
        warmup: int | None = None,
        short: int = 5,
        holdoff: int = 300,
    ) -> None:
        w = max((m.warmup for m in members), default=0) if warmup is None else warmup
        super().__init__(w, short=short, holdoff=holdoff)
        if how not in ("mean", "max", "median", "calibrated", "vote"):
            raise InputError(
                f"unknown combination '{how}'", "Use mean, max, median, calibrated or vote"
            )
        if not members:
            raise InputError("an ensemble needs at least one detector")
        self.members, self.how = members, how
        for m in members:  # 'calibrated': each member judges its own surprise, the largest wins
            m.tracks_surprise = how in ("calibrated", "vote")

    def _zs(self, t: float, x: float) -> list[float]:
        return [m.z_one(t, x) if m.seen >= m.warmup else 0.0 for m in self.members]

    def z_one(self, t: float, x: float) -> float:
        zs = self._zs(t, x)
        if self.how == "max":
            return max(zs)
        return float(np.median(zs)) if self.how == "median" else _mean(zs)

    def surprise(self, t: float, x: float) -> float:
        if self.how not in ("calibrated", "vote"):
            return super().surprise(t, x)
        own = sorted(m.surprise(t, x) for m in self.members)
        # vote: the second largest, i.e. at least two members must be surprised
        return own[-2] if self.how == "vote" and len(own) > 1 else own[-1]

    def expected_one(self, t: float) -> float:
        return _median([m.expected_one(t) for m in self.members])

    def _learn(self, t: float, x: float) -> None:
        for m in self.members:
            m.learn_one(t, x)

    def explain(self, t: float, x: float) -> str:
        zs = self._zs(t, x)
        parts = ", ".join(f"{m.name} z={z:.1f}" for m, z in zip(self.members, zs))
        return f"observed {x:.4g}, expected {self.expected_one(t):.4g} ({parts})"


class Population:
    """The recent values of every key of a job: the baseline for a key that has no history."""

    def __init__(self, size: int = 2000, warmup: int = 50) -> None:
        self.size = size
        self.values: list[float] = []
        self.warmup = warmup
        self.seen = 0
        self._stats = (0.0, 0.0)

    def learn(self, x: float) -> None:
        if math.isfinite(x):
            push(self.values, x, self.size)
            self.seen += 1
            if self.seen % REFRESH == 0:
                self._stats = _robust(self.values)

    def expected(self) -> float:
        return self._stats[0]

    def score(self, x: float) -> float:
        """Robust z of x against all keys, as a score; 0 until enough keys were seen."""
        if len(self.values) < self.warmup or not math.isfinite(x):
            return 0.0
        med, sd = self._stats
        return score_from_z(abs(x - med) / max(sd, 1e-3 * abs(med), 1e-9))


DETECTORS: dict[str, type[Detector]] = {c.name: c for c in (SeasonalMAD, HoltEWMA, KNNShape)}
ENSEMBLES: dict[str, list[str]] = {
    "robust": ["seasonal", "ewma"],  # light enough to run per key in the stream processor
    "ensemble": ["seasonal", "ewma", "knn"],
}


def _registry() -> dict[str, type[Detector]]:
    from huntlab.stream.context import ContextNovelty, RestingContext

    return {**DETECTORS, **{c.name: c for c in (ContextNovelty, RestingContext)}}


def _single(name: str, seed: int, w: dict, p: dict, params: dict[str, Any]) -> Detector:
    try:
        cls = _registry()[name]
    except KeyError:
        names = ", ".join([*ENSEMBLES, *_registry()])
        raise InputError(f"unknown detector '{name}'", f"Use one of: {names}") from None
    kw = {**params, **w}
    if cls in (SeasonalMAD, HoltEWMA):
        kw.update(p)
    return cls(seed=seed, **kw) if cls is KNNShape else cls(**kw)


def make_detector(name: str = "ensemble", seed: int = 0, **params: Any) -> Detector:
    """A detector by name; 'ensemble' is the default mix (see ENSEMBLES for the mixes)."""
    how = str(params.pop("how", "vote" if name == "ensemble" else "mean"))
    w = {"warmup": int(params.pop("warmup"))} if "warmup" in params else {}
    p = {"poisson": bool(params.pop("poisson"))} if "poisson" in params else {}
    short, holdoff = int(params.pop("short", 5)), params.pop("holdoff", None)
    names = params.pop("members", None) or ENSEMBLES.get(name)
    if names is not None:
        members = [_single(m, seed, w, p, {}) for m in names]
        hold = int(holdoff or Ensemble.default_holdoff)
        return Ensemble(members, how=how, short=short, holdoff=hold, **params)
    det = _single(name, seed, w, p, params)
    hold = int(holdoff or det.default_holdoff)
    det.short, det.holdoff = short, hold  # a fresh detector: its buffers are still empty
    return det
