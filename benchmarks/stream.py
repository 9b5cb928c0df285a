"""Stream processor benchmark: events/s sustained and latency, with 1 s micro-batches.

A feeder process appends frames of sample events to a real segment log at a fixed rate (event
time = append time), for a bounded time; the stream processor (this process) runs a job keyed
by family x country over 1-second tumbling windows with per-key detectors, committing every
micro-batch. Every 5 seconds one key gets a burst, so alerts fire. Reported: events/s
processed, latency from append to the commit that holds an event (per frame), and from the
end of an anomalous window (its last event's append) to the alert's delivery, and how long a
micro-batch takes (a frame waits up to 1 s for the next batch, then for the whole batch, so
p99 append->commit is about 1 s plus the slowest batches).

Usage: python -m benchmarks.stream [--rate 100000] [--seconds 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np

JOB = """\
-- name: bench_outbreak
-- window: 1 s
-- watermark: 0 s
-- key: family, country
-- noise: poisson
-- warmup: 8
-- support: detections >= 200
-- fill: none
SELECT window_start, family, country, count(*) AS detections FROM events
WHERE family IS NOT NULL GROUP BY ALL
"""
FRAME_EVERY_S = 0.1
TARGET_RATE, TARGET_P99_S = 100_000, 2.0


def feed(log_dir: str, rate: int, seconds: float) -> None:
    """Append rate * FRAME_EVERY_S events every FRAME_EVERY_S seconds, ts = now."""
    import pyarrow as pa

    from huntlab.events import TS_TYPE
    from huntlab.sample import sample_table
    from huntlab.upstream.log import SegmentLog

    pool = sample_table(200_000, seed=3)
    per = int(rate * FRAME_EVERY_S)
    burst = pool.filter(pa.compute.is_valid(pool.column("family"))).slice(0, 2000)
    for col, val in (("family", "Qakbot"), ("country", "BR")):
        i = burst.schema.get_field_index(col)
        burst = burst.set_column(i, col, pa.array([val] * burst.num_rows))
    ts_i = pool.schema.get_field_index("ts")
    log = SegmentLog(Path(log_dir), writable=True)
    start, i, last = time.time(), 0, -1
    while time.time() - start < seconds:
        now = time.time()
        off = (i * per) % (pool.num_rows - per)
        frame = pool.slice(off, per)
        if int(now) % 5 == 0 and now % 1 >= 0.3 and int(now) != last:  # once every 5 s
            frame, last = pa.concat_tables([frame, burst]), int(now)
        us = np.full(frame.num_rows, int(now * 1e6), dtype=np.int64)
        frame = frame.set_column(ts_i, "ts", pa.array(us).cast(TS_TYPE))
        log.append(f"f{i}", "events", frame)
        i += 1
        time.sleep(max(0.0, start + i * FRAME_EVERY_S - time.time()))
    log.close()


class Recorder:
    """A sink that notes when each alert arrives."""

    def __init__(self) -> None:
        self.latencies: list[float] = []

    def deliver(self, alerts: list) -> None:
        now = time.time()
        self.latencies += [now - a.window_end / 1e6 for a in alerts]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(rate: int, seconds: float) -> None:
    from huntlab.stream.job import parse_stream_sql
    from huntlab.stream.processor import StreamProcessor
    from huntlab.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="huntlab-stream-bench-"))
    ws = Workspace.init(root / "ws")
    log_dir = ws.root / ws.config.upstream.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    rec = Recorder()
    proc = StreamProcessor(ws, parse_stream_sql(JOB), sinks=[rec])
    feeder = mp.get_context("spawn").Process(target=feed, args=(str(log_dir), rate, seconds))
    feeder.start()
    lat: list[float] = []
    weights: list[int] = []
    events = 0
    t0 = None
    busy = 0.0
    batch_s: list[float] = []
    while True:
        tick = time.monotonic()
        alive = feeder.is_alive()
        rep = proc.step()
        if not alive and not rep.events:
            break
        if rep.events:
            t0 = t0 or time.time()
            done = time.time()
            busy += rep.seconds
            batch_s.append(rep.seconds)
            events += rep.events
            per = rep.events / max(len(rep.appended_at), 1)
            lat += [done - a for a in rep.appended_at]
            weights += [int(per)] * len(rep.appended_at)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    feeder.join()
    wall = time.time() - (t0 or time.time())
    expanded = np.repeat(lat, np.maximum(weights, 1)) if lat else []
    rows = [
        ("offered rate (events/s)", f"{rate:,}", f"{TARGET_RATE:,}", rate / TARGET_RATE),
        (
            "processed (events/s, wall)",
            f"{events / wall:,.0f}",
            f"{TARGET_RATE:,}",
            events / wall / TARGET_RATE,
        ),
        (
            "capacity (events/s busy)",
            f"{events / busy:,.0f}",
            f"{TARGET_RATE:,}",
            events / busy / TARGET_RATE,
        ),
        ("micro-batch p50 (s)", f"{pct(batch_s, 50):.2f}", "", None),
        ("micro-batch max (s)", f"{max(batch_s, default=float('nan')):.2f}", "", None),
        ("append->commit p50 (s)", f"{pct(list(expanded), 50):.2f}", f"{TARGET_P99_S}", None),
        (
            "append->commit p99 (s)",
            f"{pct(list(expanded), 99):.2f}",
            f"{TARGET_P99_S}",
            pct(list(expanded), 99) / TARGET_P99_S,
        ),
        ("window end->alert p50 (s)", f"{pct(rec.latencies, 50):.2f}", f"{TARGET_P99_S}", None),
        (
            "window end->alert p99 (s)",
            f"{pct(rec.latencies, 99):.2f}",
            f"{TARGET_P99_S}",
            pct(rec.latencies, 99) / TARGET_P99_S,
        ),
    ]
    print(
        f"\nstream benchmark: {events:,} events in {wall:.1f} s, {len(rec.latencies)} alerts, "
        f"{proc.state.seq} commits, micro-batch 1 s, {len(proc.state.detectors):,} keys"
    )
    print(f"{'measure':<28} {'this run':>12} {'target':>10} {'ratio':>7}")
    for name, val, ref, ratio in rows:
        print(f"{name:<28} {val:>12} {ref:>10} {'' if ratio is None else f'{ratio:.2f}':>7}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=TARGET_RATE)
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args()
    run(args.rate, args.seconds)


if __name__ == "__main__":
    main()
