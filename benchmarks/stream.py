"""Stream processor benchmark: events/s sustained and latency, with 1 s micro-batches.

A feeder process appends frames of sample events to a real segment log at a fixed rate (event
time = append time), for a bounded time; the stream processor (this process) runs a job keyed
by family x country over 1-second tumbling windows with per-key detectors, committing every
micro-batch. After WARM_S seconds of history, every BURST_EVERY_S seconds one established key
(a different one each time) gets a burst of events, so alerts fire. Reported: events/s
processed, latency from append to the commit that holds an event (per frame), from the
acknowledgement of a burst (its append to the log returned) to the delivery of its alert, and
how long a micro-batch takes (a frame waits up to 1 s for the next batch, then for the whole
batch, so p99 append->commit is about 1 s plus the slowest batches).

Usage: python -m benchmarks.stream [--rate 100000] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
WARM_S, BURST_EVERY_S, BURST_EVENTS = 20.0, 2.0, 2000
TARGET_RATE, TARGET_P99_S = 100_000, 2.0


def busiest_keys(pool: pa.Table, n: int) -> list[tuple[str, str]]:
    """The n most frequent (family, country) pairs: keys with a history when a burst hits."""
    counts = pool.group_by(["family", "country"]).aggregate([("family", "count")])
    counts = counts.filter(pc.is_valid(counts.column("family"))).sort_by(
        [("family_count", "descending"), ("family", "ascending"), ("country", "ascending")]
    )
    return list(zip(counts["family"].to_pylist()[:n], counts["country"].to_pylist()[:n]))


def feed(log_dir: str, rate: int, seconds: float, acks: str) -> None:
    """Append rate * FRAME_EVERY_S events every FRAME_EVERY_S seconds, ts = now; after WARM_S a
    burst on a fresh key every BURST_EVERY_S, its acknowledgement time written to `acks`."""
    from huntlab.events import TS_TYPE
    from huntlab.sample import sample_table
    from huntlab.upstream.log import SegmentLog

    pool = sample_table(200_000, seed=3)
    per = int(rate * FRAME_EVERY_S)
    keys = iter(busiest_keys(pool, 1000))
    template = pool.filter(pc.is_valid(pool.column("family"))).slice(0, BURST_EVENTS)
    ts_i = pool.schema.get_field_index("ts")
    log = SegmentLog(Path(log_dir), writable=True)
    start, i, next_burst = time.time(), 0, time.time() + WARM_S
    with open(acks, "w") as out:
        while time.time() - start < seconds:
            now = time.time()
            off = (i * per) % (pool.num_rows - per)
            frame, key = pool.slice(off, per), None
            # early in a window (it closes next second), and not in the last seconds (the last
            # window closes only when a later event comes)
            if next_burst <= now < start + seconds - 2 and now % 1 < 0.5:
                key, next_burst = next(keys), next_burst + BURST_EVERY_S
                burst = template
                for col, val in zip(("family", "country"), key):
                    j = burst.schema.get_field_index(col)
                    burst = burst.set_column(j, col, pa.array([val] * burst.num_rows))
                frame = pa.concat_tables([frame, burst])
            us = np.full(frame.num_rows, int(now * 1e6), dtype=np.int64)
            frame = frame.set_column(ts_i, "ts", pa.array(us).cast(TS_TYPE))
            log.append(f"f{i}", "events", frame)
            if key is not None:  # acknowledged: the append returned
                out.write(json.dumps({"key": f"family={key[0]}, country={key[1]}", "at": now}))
                out.write("\n")
                out.flush()
            i += 1
            time.sleep(max(0.0, start + i * FRAME_EVERY_S - time.time()))
    log.close()


class Recorder:
    """A sink that notes when each alert arrives."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, float]] = []  # (key, delivery time)

    def deliver(self, alerts: list) -> None:
        now = time.time()
        self.delivered += [(a.key, now) for a in alerts]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(rate: int, seconds: float, root: Path) -> None:
    from huntlab.stream.job import parse_stream_sql
    from huntlab.stream.processor import StreamProcessor
    from huntlab.workspace import Workspace

    ws = Workspace.init(root / "ws")
    log_dir = ws.root / ws.config.upstream.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    rec = Recorder()
    proc = StreamProcessor(ws, parse_stream_sql(JOB), sinks=[rec])
    acks = root / "bursts.jsonl"
    feeder = mp.get_context("spawn").Process(
        target=feed, args=(str(log_dir), rate, seconds, str(acks))
    )
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
    bursts = [json.loads(line) for line in acks.read_text().splitlines()]
    first_alert: dict[str, float] = {}
    for key, at in rec.delivered:
        first_alert.setdefault(key, at)
    to_alert = [first_alert[b["key"]] - b["at"] for b in bursts if b["key"] in first_alert]
    others = len({k for k, _ in rec.delivered} - {b["key"] for b in bursts})
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
        ("bursts alerted", f"{len(to_alert)} of {len(bursts)}", "all", None),
        ("ack->alert p50 (s)", f"{pct(to_alert, 50):.2f}", f"{TARGET_P99_S}", None),
        (
            "ack->alert p99 (s)",
            f"{pct(to_alert, 99):.2f}",
            f"{TARGET_P99_S}",
            pct(to_alert, 99) / TARGET_P99_S,
        ),
    ]
    print(
        f"\nstream benchmark: {events:,} events in {wall:.1f} s, {len(rec.delivered)} alerts "
        f"({others} on keys without a burst), "
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
    with tempfile.TemporaryDirectory(prefix="huntlab-stream-bench-") as tmp:  # removed after
        run(args.rate, args.seconds, Path(tmp))


if __name__ == "__main__":
    main()
