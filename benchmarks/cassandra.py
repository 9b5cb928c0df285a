"""Cassandra connector speed against plain driver loops, on a real local node, side by side.

Writes and reads N rows of per-hash state (file_hash, family, hits, first/last seen, clients):

- write  huntlab  : CassandraConnector.write(arrow_table) (Arrow -> bound rows, upsert)
- write  reference: the rows already as Python tuples, one prepared INSERT through the driver's
                    execute_concurrent_with_args at the same concurrency (a cassandra-stress-like
                    loop with no conversion work: the ceiling of the Python driver here)
- read   huntlab  : CassandraConnector.read() -> one Arrow table (token ranges in parallel)
- read   reference: one paged `SELECT *` into a list of tuples (what a script would do)
- by key huntlab  : read(filters=[file_hash IN 2,000 hashes]) -> Arrow
- by key reference: execute_concurrent of the single-partition SELECT for the same hashes

The node is started here like the tests' (its own JVM on loopback), with --heap.
Usage: python -m benchmarks.cassandra [--rows 300000] [--heap 1G] [--concurrency 128]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = (
    "file_hash text PRIMARY KEY, family text, hits bigint, first_seen timestamp, "
    "last_seen timestamp, clients int"
)


def state_rows(n: int) -> pa.Table:
    """N rows of per-hash state with realistic shapes (sha256 hex keys)."""
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    hashes = [hashlib.sha256(i.to_bytes(8, "little")).hexdigest() for i in range(n)]
    return pa.table(
        {
            "file_hash": hashes,
            "family": [f"family_{i % 997}" for i in range(n)],
            "hits": pa.array([(i * 7919) % 100_000 for i in range(n)], pa.int64()),
            "first_seen": pa.array(
                [base + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("ms", tz="UTC")
            ),
            "last_seen": pa.array(
                [base + dt.timedelta(seconds=2 * i) for i in range(n)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "clients": pa.array([i % 5000 for i in range(n)], pa.int32()),
        }
    )


def timed(fn):  # noqa: ANN001, ANN201 - tiny local helper
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--heap", default="1G")
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--keys", type=int, default=2000)
    args = ap.parse_args()

    from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
    from cassandra.query import SimpleStatement
    from tests.services.cassandra_node import SUPERUSER, CassandraNode

    from huntlab.catalog.store import DatasetEntry
    from huntlab.config import CassandraConnection
    from huntlab.connectors.base import Filter
    from huntlab.connectors.cassandra import CassandraConnector
    from huntlab.connectors.cassandra_session import close_all

    home = Path(tempfile.mkdtemp(prefix="huntlab-cassandra-bench-"))
    node = CassandraNode.create(home / "node", heap=args.heap)
    print(f"starting Cassandra (heap {args.heap}) ...", flush=True)
    started = node.start()
    try:
        node.query(
            "CREATE KEYSPACE bench WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        node.query(f"CREATE TABLE bench.state_ref ({COLUMNS})")
        node.query(f"CREATE TABLE bench.state_hl ({COLUMNS})")
        os.environ["HUNTLAB_BENCH_CASSANDRA_PASSWORD"] = SUPERUSER[1]
        conn = CassandraConnection(
            type="cassandra",
            port=node.native_port,
            user=SUPERUSER[0],
            password_env="HUNTLAB_BENCH_CASSANDRA_PASSWORD",
            consistency="ONE",
        )
        options = {"concurrency": args.concurrency}
        hl = CassandraConnector(
            DatasetEntry("state", "external", "cassandra", "bench.state_hl", options=options),
            connection=conn,
        )
        session = hl.session()
        print(f"generating {args.rows:,} rows ...", flush=True)
        data = state_rows(args.rows)
        tuples = list(zip(*(c.to_pylist() for c in data.columns)))
        results: list[tuple[str, str, int, float]] = []

        insert = session.prepare(
            "INSERT INTO bench.state_ref (file_hash, family, hits, first_seen, last_seen, "
            "clients) VALUES (?, ?, ?, ?, ?, ?)"
        )
        _, s = timed(
            lambda: execute_concurrent_with_args(
                session, insert, tuples, concurrency=args.concurrency
            )
        )
        results.append(("write", "reference", args.rows, s))
        _, s = timed(lambda: hl.write(data))
        results.append(("write", "huntlab", args.rows, s))

        def ref_read() -> list:
            stmt = SimpleStatement("SELECT * FROM bench.state_hl", fetch_size=5000)
            return list(session.execute(stmt))

        rows, s = timed(ref_read)
        results.append(("read all", "reference", len(rows), s))
        table, s = timed(hl.read)
        results.append(("read all", "huntlab", table.num_rows, s))
        assert table.num_rows == args.rows == len(rows)

        keys = data.column("file_hash").to_pylist()[:: max(1, args.rows // args.keys)][: args.keys]
        by_key = session.prepare("SELECT * FROM bench.state_hl WHERE file_hash = ?")

        def ref_keys() -> int:
            pairs = [(by_key, (k,)) for k in keys]
            res = execute_concurrent(session, pairs, concurrency=args.concurrency)
            return sum(len(list(r.result_or_exc)) for r in res)

        n, s = timed(ref_keys)
        results.append(("by key", "reference", n, s))
        table, s = timed(lambda: hl.read(filters=[Filter("file_hash", "in", keys)]))
        results.append(("by key", "huntlab", table.num_rows, s))
        report(results, args, started, node.memory_mb())
    finally:
        close_all()
        node.kill()


def report(results: list, args: argparse.Namespace, started: float, mem: dict) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{args.rows:,} rows of per-hash state, concurrency {args.concurrency}, "
        f"1 node on loopback, {os.cpu_count()} cores shared with the node"
    )
    print(f"{'step':<9} {'variant':<10} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'ratio':>7}")
    ref: dict[str, float] = {}
    for step, variant, n, s in results:
        rate = n / s if s else float("inf")
        if variant == "reference":
            ref[step] = rate
        ratio = rate / ref[step] if step in ref else float("nan")
        print(f"{step:<9} {variant:<10} {n:>9,} {s:>8.2f} {rate:>10,.0f} {ratio:>6.2f}x")
    print(
        f"node start {started:.1f}s, node RSS {mem.get('VmRSS', 0):.0f} MiB "
        f"(peak {mem.get('VmHWM', 0):.0f}); client peak RSS {peak:.0f} MiB"
    )
    print("ratio = huntlab rows/s / reference rows/s; target: write and read >= 1.0x")


if __name__ == "__main__":
    main()
