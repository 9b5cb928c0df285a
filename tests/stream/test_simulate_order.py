"""The simulator sends in event-time order with a small jitter and a few late events."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.stream


def _ts(rec: object) -> float:
    return dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).timestamp()  # type: ignore[index]


def test_ordered_batches_follow_event_time_with_jitter_and_late_share() -> None:
    from huntlab.upstream.simulate import ordered_batches

    out = list(ordered_batches(20_000, 500, seed=5, bad_share=0.0, jitter_s=30, late_share=0.01))
    assert sum(len(b) for _, b in out) == 20_000
    sends = [at for at, _ in out]
    assert sends == sorted(sends)
    # batch k's events arrive between its send time and batch k+1's
    bounds = [*sends[1:], float("inf")]
    assert all(_ts(r) <= nxt for (_, batch), nxt in zip(out, bounds) for r in batch)
    # an event sent more than the jitter after it happened is late (arrival >= send time)
    late = sum(at - _ts(r) > 30 for at, batch in out for r in batch)
    assert 10 <= late <= 200  # at most the 1 % late share, seen past the batches' spans
    none = ordered_batches(5_000, 20, seed=5, bad_share=0.0, jitter_s=30, late_share=0.0)
    assert all(at - _ts(r) <= 30 + 1e-3 for at, batch in none for r in batch)
