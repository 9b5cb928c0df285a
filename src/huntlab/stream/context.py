"""Contextual novelty: has this sequence of quantized recent values been seen before?

In the spirit of NAB's CAD OSE (Smirnov): values are quantized into a few levels between the
running minimum and maximum; the last `order` levels form nested contexts (the last one, the last
two, ...). A context never seen before is novel; the surprise is the share of the nested contexts
that are novel (1 - longest known suffix / order), and a value beyond the range seen so far is
wholly novel. Contexts are kept as hashes in two generations (the current one and the one
before), swapped every `generation` observations: memory is bounded and the detector forgets
patterns that stopped occurring. `RestingContext` adds a tolerance around the range and a rest
period after an alarm (see its docstring).
"""

from __future__ import annotations

import math
from typing import Any

from huntlab.errors import InputError
from huntlab.stream.detectors import Detector, push, score_from_z


class ContextNovelty(Detector):
    """Share of the nested contexts of the last `order` quantized values never seen before."""

    name = "context"
    default_holdoff = 75  # CAD OSE's rest period idea; 30-150 all scored within 1.5 on NAB

    def __init__(
        self,
        levels: int = 8,
        order: int = 4,
        generation: int = 3000,
        scale: float = 4.0,
        warmup: int = 30,
        history: int = 1000,
        tolerance: float = 0.0,
    ) -> None:
        super().__init__(warmup, history=history)
        if levels < 2 or order < 1 or generation < 10 or tolerance < 0:
            raise InputError(
                "context needs levels >= 2, order >= 1, generation >= 10, tolerance >= 0"
            )
        self.levels, self.order, self.generation, self.scale = levels, order, generation, scale
        self.tolerance = tolerance  # share of the range a value may pass it by and stay familiar
        self.lo, self.hi = math.inf, -math.inf
        self.recent: list[int] = []
        self.known: set[int] = set()
        self.older: set[int] = set()
        self.born = 0  # observations since the current generation started
        self.last = 0.0
        self._memo: tuple[float, float, float] | None = None

    def _level(self, x: float) -> int:
        """Quantized x; a value beyond the range seen so far gets a level of its own."""
        if x > self.hi:
            return self.levels
        if x < self.lo:
            return -1
        if self.hi <= self.lo:
            return 0
        return min(self.levels - 1, int((x - self.lo) / (self.hi - self.lo) * self.levels))

    def _keys(self, x: float) -> list[int]:
        """Hashes of the nested contexts ending with x: the last 1, 2, ... `order` levels."""
        seq = (*self.recent, self._level(x))[-self.order :]
        return [hash(seq[-k:]) for k in range(1, len(seq) + 1)]

    def novelty(self, t: float, x: float) -> float:
        """1 - (longest known context) / order: 0 for a familiar pattern, 1 for a new one.

        A value beyond the range seen so far is wholly novel, the more the farther out it is
        (1 + log1p of the distance in ranges); one within `tolerance` ranges of it is judged as
        if it were on the edge (a slow drift to new highs is not an anomaly at every step).
        """
        if self._memo is not None and self._memo[:2] == (t, x):
            return self._memo[2]
        edge = min(max(x, self.lo), self.hi)
        near = abs(x - edge) <= self.tolerance * (self.hi - self.lo)
        if x != edge and self.hi > self.lo and near:
            nov = self._known_share(edge)
        elif not self.lo <= x <= self.hi:
            width = max(self.hi - self.lo, 1e-9 * max(abs(self.hi), 1.0), 1e-12)
            beyond = (x - self.hi if x > self.hi else self.lo - x) if self.hi >= self.lo else 0.0
            nov = 1.0 + math.log1p(beyond / width)
        else:
            nov = self._known_share(x)
        self._memo = (t, x, nov)
        return nov

    def _known_share(self, x: float) -> float:
        known = 0
        for key in self._keys(x):
            if key not in self.known and key not in self.older:
                break
            known += 1
        return 1.0 - known / self.order

    def z_one(self, t: float, x: float) -> float:
        # exponential: the shared layer's log1p turns it back into `scale * novelty`
        return math.expm1(min(self.scale * self.novelty(t, x), 50.0))

    def expected_one(self, t: float) -> float:
        return self.last

    def _learn(self, t: float, x: float) -> None:
        keys = self._keys(x)
        self.known.update(keys)
        self.born += 1
        if self.born >= self.generation:
            self.older, self.known, self.born = self.known, set(), 0
        push(self.recent, self._level(x), self.order)
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)
        self.last = x
        self._memo = None


class RestingContext(ContextNovelty):
    """ContextNovelty that tolerates near misses of its range and rests after an alarm.

    Two changes, each measured on NAB by holding one category out (docs/architecture.md): a
    value within 2% of the range beyond it is judged as if on the edge, and after a surprise of
    at least `rest_level` is reported in full, surprises in the next `holdoff` rows are damped
    however large (CAD OSE's rest period): an anomaly that grows over a few rows alarms once.
    With `holdoff=1` (the stream processor, which de-duplicates alerts itself) it never rests.
    """

    name = "context-rest"

    def __init__(self, tolerance: float = 0.02, rest_level: float = 1.6, **kw: Any) -> None:
        super().__init__(tolerance=tolerance, **kw)
        self.rest_level = rest_level  # in the shared layer's units (about a 0.29 score)
        self.since_alarm = 1 << 30  # rows since the last alarm

    def _fresh(self, t: float, x: float) -> tuple[float, bool]:
        """(surprise, whether it is reported in full): above the recent ones, not resting."""
        sup = self.surprise(t, x)
        rest = self.holdoff  # the bound of s_recent
        resting = rest > 1 and self.since_alarm <= rest
        return sup, sup > max(self.s_recent, default=0.0) and not resting

    def score_one(self, t: float, x: float) -> float:
        sup, fresh = self._fresh(t, float(x))
        return score_from_z(sup if fresh else 0.1 * sup)

    def learn_one(self, t: float, x: float) -> None:
        sup, fresh = self._fresh(t, float(x))
        self.since_alarm = 0 if fresh and sup >= self.rest_level else self.since_alarm + 1
        super().learn_one(t, x)
