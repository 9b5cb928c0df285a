"""A client simulator: realistic upstream batches (with some malformed events) sent over HTTP."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

# Fields a client sends; `domain`, `event_date` and the country are derived by the collector.
SENT = (
    "event_id",
    "event_type",
    "ts",
    "client_id",
    "product_version",
    "os",
    "detection_name",
    "family",
    "file_hash",
    "url",
    "hit_count",
    "crash_signature",
)


@dataclass
class SimulationResult:
    """What the simulator sent and what the collector acknowledged."""

    batches: int = 0
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    retries: int = 0
    unacknowledged: int = 0  # batches given up after every retry
    latencies: list[float] = field(default_factory=list)
    acked_batch_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> str:
        """One line for the CLI and the demo."""
        lat = sorted(self.latencies) or [0.0]
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        lost = (
            f", [red]{self.unacknowledged} batches unacknowledged[/]" if self.unacknowledged else ""
        )
        return (
            f"sent {self.events:,} events in {self.batches:,} batches: {self.accepted:,} "
            f"accepted, {self.rejected:,} rejected, {self.duplicates} duplicate batches, "
            f"{self.retries} retries{lost}; ack p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms"
        )


def product_keys(env_names: dict[str, str]) -> dict[str, str]:
    """Product -> client key, from the environment variables named in the configuration."""
    import os

    from huntlab.errors import ConfigError

    keys = {p: os.environ[v] for p, v in env_names.items() if os.environ.get(v)}
    if not keys:
        raise ConfigError(
            "no client key is set for any product",
            "Export the variables named in [upstream.client_keys_env]",
        )
    return keys


def raw_client_id(pseudo: str) -> str:
    """A raw-looking client id (a GUID) for a generated client: what a real client would send."""
    return str(uuid.UUID(hashlib.md5(pseudo.encode()).hexdigest()))  # noqa: S324 - not security


def client_ip(country: str, client: str) -> str:
    """A synthetic address inside the demo geo table's range for the country."""
    from huntlab.upstream.demo_geo import country_prefix

    h = int(hashlib.sha1(client.encode()).hexdigest()[:4], 16)  # noqa: S324 - not security
    return f"{country_prefix(country)}.{h >> 8}.{h & 0xFF}"


def to_records(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """Generated events -> what the client sends (raw ids, an IP, timestamps as ISO text)."""
    out = []
    for row in batch.to_pylist():
        rec = {k: row[k] for k in SENT if row.get(k) is not None}
        rec["ts"] = row["ts"].isoformat().replace("+00:00", "Z")
        rec["client_id"] = raw_client_id(row["client_id"])
        rec["ip"] = client_ip(row["country"], row["client_id"])
        rec["product"] = row["product"]
        out.append(rec)
    return out


def corrupt(records: list[dict[str, Any]], share: float, rng: random.Random) -> list[Any]:
    """Spoil a share of the events the ways real clients do."""
    spoilers: list[Callable[[dict[str, Any]], Any]] = [
        lambda r: {k: v for k, v in r.items() if k != "event_type"},
        lambda r: {**r, "hit_count": "many"},
        lambda r: {**r, "ts": (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()},
        lambda r: {**r, "event_type": "telemetry_v9"},
        lambda r: {**r, "crash_signature": "x" * 100_000},
        lambda r: {**r, "file_hash": "not-a-hash"},
        lambda r: "just a string",
    ]
    return [rng.choice(spoilers)(r) if rng.random() < share else r for r in records]


def batches(
    n_events: int, batch_size: int, *, seed: int, bad_share: float, url_dir: Any = None
) -> Iterator[list[Any]]:
    """Batches of raw client records from the sample generator."""
    from huntlab.sample import generate_events

    rng = random.Random(seed)
    for rb in generate_events(n_events, seed=seed, batch_size=batch_size, url_dir=url_dir):
        for start in range(0, rb.num_rows, batch_size):
            yield corrupt(to_records(rb.slice(start, batch_size)), bad_share, rng)


def ordered_batches(
    n_events: int,
    batch_size: int,
    *,
    seed: int,
    bad_share: float,
    url_dir: Any = None,
    jitter_s: float = 30.0,
    late_share: float = 0.002,
    late_s: float = 3 * 3600.0,
) -> Iterator[tuple[float, list[Any]]]:
    """(send-at event time in seconds, batch) in event-time order, as real clients deliver.

    Most events arrive up to `jitter_s` after their event time (so neighbours swap places); a
    `late_share` arrive up to `late_s` late (a laptop back online): the stream watermark admits
    the slightly late ones and counts the rest as late."""
    import numpy as np

    from huntlab.sample import sample_table

    table = sample_table(n_events, seed=seed, url_dir=url_dir)
    if table.num_rows == 0:
        return
    rng = np.random.default_rng(seed)
    ts = table.column("ts").cast(pa.int64()).to_numpy().astype(np.float64) / 1e6
    delay = rng.uniform(0.0, jitter_s, len(ts))
    late = rng.random(len(ts)) < late_share
    delay[late] = rng.uniform(jitter_s, late_s, int(late.sum()))
    arrive = ts + delay
    order = np.argsort(arrive, kind="stable")
    table, arrive = table.take(order), arrive[order]
    spoil = random.Random(seed)
    for start in range(0, table.num_rows, batch_size):
        rb = table.slice(start, batch_size).combine_chunks().to_batches()[0]
        yield float(arrive[start]), corrupt(to_records(rb), bad_share, spoil)


def encode(records: list[Any], keys: dict[str, str]) -> dict[str, bytes]:
    """Group a batch by product (each product has its own key) as gzipped JSON lines.

    Events of a product without a key are sent as the first product that has one."""
    default = next(iter(keys))
    by_product: dict[str, list[bytes]] = {}
    for r in records:
        p = r.get("product", default) if isinstance(r, dict) else default
        if p not in keys:
            p = default
            if isinstance(r, dict):
                r["product"] = p
        by_product.setdefault(p, []).append(json.dumps(r).encode())
    return {p: gzip.compress(b"\n".join(lines), 1) for p, lines in by_product.items()}


def send(
    client: Any,
    url: str,
    key: str,
    body: bytes,
    batch_id: str,
    res: SimulationResult,
    retries: int = 20,
) -> dict[str, Any] | None:
    """POST one batch, resending it with the same id until it is acknowledged."""
    import httpx

    for attempt in range(retries):
        t0 = time.perf_counter()
        try:
            r = client.post(
                url,
                content=body,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Encoding": "gzip",
                    "X-Batch-Id": batch_id,
                    "Content-Type": "application/x-ndjson",
                },
            )
        except httpx.TransportError:
            with res.lock:
                res.retries += 1
            time.sleep(min(0.1 * 2**attempt, 2.0))
            continue
        if r.status_code >= 500:
            with res.lock:
                res.retries += 1
            time.sleep(min(0.1 * 2**attempt, 2.0))
            continue
        res.latencies.append(time.perf_counter() - t0)
        return r.json()
    return None


def simulate(
    url: str,
    keys: dict[str, str],
    *,
    events: int,
    batch_size: int = 1000,
    rate: float | None = None,
    bad_share: float = 0.02,
    seed: int = 11,
    url_dir: Any = None,
    clients: int = 1,
    on_batch: Callable[[SimulationResult], None] | None = None,
    speed: float | None = None,
    in_order: bool = False,
    stop: threading.Event | None = None,
) -> SimulationResult:
    """Send `events` events from `clients` concurrent connections at up to `rate` events/s in all;
    every batch is resent (same id) until it is acknowledged.

    `in_order` (or `speed`) sends in event-time order with client jitter and a few late events;
    `speed` plays event time that many times faster than the wall clock (86400: a day a second).
    """
    import httpx

    res = SimulationResult()
    endpoint = url.rstrip("/") + "/v1/upstream"
    lock = res.lock
    if in_order or speed:
        timed = ordered_batches(events, batch_size, seed=seed, bad_share=bad_share, url_dir=url_dir)
    else:
        plain = batches(events, batch_size, seed=seed, bad_share=bad_share, url_dir=url_dir)
        timed = ((0.0, b) for b in plain)
    source = enumerate(timed)
    t_start = time.perf_counter()
    clock: list[float] = []  # the event time of the first batch (the accelerated clock's zero)

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:  # the generator is not thread-safe
                    item = None if stop is not None and stop.is_set() else next(source, None)
                    if item is not None and not clock:
                        clock.append(item[1][0])
                if item is None:
                    return
                i, (at, recs) = item
                if speed:  # wait until the accelerated clock reaches the batch's time
                    due = (at - clock[0]) / speed - (time.perf_counter() - t_start)
                    if due > 0:
                        time.sleep(due)
                for product, body in encode(recs, keys).items():
                    batch_id = f"sim-{seed}-{i}-{product}"
                    ack = send(http, endpoint, keys[product], body, batch_id, res)
                    if ack is None or "accepted" not in ack:
                        with lock:
                            res.unacknowledged += 1
                        continue
                    with lock:
                        res.accepted += ack["accepted"]
                        res.rejected += ack["rejected"]
                        res.duplicates += int(ack["duplicate"])
                        res.acked_batch_ids.append(batch_id)
                with lock:
                    res.batches += 1
                    res.events += len(recs)
                    if on_batch:
                        on_batch(res)
                    ahead = res.events / rate - (time.perf_counter() - t_start) if rate else 0
                if ahead > 0:
                    time.sleep(ahead)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(max(1, clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return res
