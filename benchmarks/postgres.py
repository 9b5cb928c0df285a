"""The PostgreSQL connector against PostgreSQL's own COPY to and from a file, side by side.

Starts a throw-away PostgreSQL 15 (the test fixture's server: Debian binaries, loopback, fsync off
for both sides alike), generates telemetry events (huntlab.sample) and times, per size:

- read            : connector.read() of the whole table into Arrow  vs  COPY table TO file (binary)
- write (new)     : connector.write(overwrite) creating the table    vs  COPY FROM file (binary)
- overwrite       : connector.write(overwrite) of an existing table (new table, swap in one txn)
- append          : connector.write(append) into an existing table
- upsert          : connector.write(merge, keys=[event_id]) of the same rows into a keyed table
The reference for every write is the same COPY FROM a binary file into an empty table.

Usage: python -m benchmarks.postgres [--sizes 1000000,5000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from huntlab.config import PostgresConnection
from huntlab.connectors.base import connector_for
from huntlab.connectors.postgres import postgres_entry
from huntlab.sample import sample_table

PASSWORD_ENV = "HUNTLAB_BENCH_PG_PASSWORD"


def best(fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None) -> float:
    """The fastest of `repeat` runs (setup in `before` is not timed)."""
    times = []
    for _ in range(repeat):
        if before:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_size(server: Any, n: int, repeat: int) -> list[tuple[str, float, float]]:
    db = server.create_database("bench")
    conn = PostgresConnection(type="postgres", host=server.host, port=server.port, database=db,
                              user=server.user, password_env=PASSWORD_ENV)  # fmt: skip
    events = sample_table(n)
    print(f"  generated {events.num_rows:,} events ({events.nbytes / 1e6:,.0f} MB in Arrow)")
    target = connector_for(postgres_entry("ev", "bench", conn, table="events"))
    path = str(server.datadir.parent / "events.bin")
    pg = server.connect(db)

    def sql(*stmts: str) -> None:
        for s in stmts:
            pg.execute(s)

    rows: list[tuple[str, float, float]] = []
    # write (new table) vs COPY FROM a binary file into an empty table of the same definition
    w_new = best(lambda: target.write(events, "overwrite"), repeat,
                 before=lambda: sql("DROP TABLE IF EXISTS events"))  # fmt: skip
    sql(f"COPY events TO '{path}' (FORMAT binary)", "CREATE TABLE ref (LIKE events)")
    copy_in = best(lambda: sql(f"COPY ref FROM '{path}' (FORMAT binary)"), repeat,
                   before=lambda: sql("TRUNCATE ref"))  # fmt: skip
    rows.append(("write (new table)", w_new, copy_in))
    # read vs COPY TO a binary file
    got: list[pa.Table] = []
    read = best(lambda: got.append(target.read()), repeat)
    assert got[-1].num_rows == n, "the read lost rows"
    copy_out = best(lambda: sql(f"COPY events TO '{path}' (FORMAT binary)"), repeat)
    rows.insert(0, ("read", read, copy_out))
    rows.append(("overwrite (swap)", best(lambda: target.write(events, "overwrite"), repeat),
                 copy_in))  # fmt: skip
    rows.append(("append", best(lambda: target.write(events, "append"), repeat,
                                before=lambda: sql("TRUNCATE events")), copy_in))  # fmt: skip
    sql("TRUNCATE events", "ALTER TABLE events ADD PRIMARY KEY (event_id)")
    target.write(events, "append")
    rows.append(("upsert (all keys exist)",
                 best(lambda: target.write(events, "merge", keys=["event_id"]), repeat),
                 copy_in))  # fmt: skip
    pg.close()
    os.unlink(path)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from tests.services.postgres import start_server

    server = start_server()
    os.environ[PASSWORD_ENV] = server.password
    try:
        results = []
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"== {n:,} events")
            for op, ours, ref in run_size(server, n, args.repeat):
                results.append((n, op, ours, ref))
                print(f"  {op:<24} huntlab {ours:7.2f}s  COPY {ref:7.2f}s  x{ours / ref:.2f}")
    finally:
        server.stop()
    print()
    print(f"| {'rows':>9} | {'operation':<24} | {'huntlab s':>9} | {'COPY file s':>11} | "
          f"{'ratio':>5} | {'huntlab rows/s':>14} |")  # fmt: skip
    print(f"|{'-' * 11}|{'-' * 26}|{'-' * 11}|{'-' * 13}|{'-' * 7}|{'-' * 16}|")
    for n, op, ours, ref in results:
        print(f"| {n:>9,} | {op:<24} | {ours:>9.2f} | {ref:>11.2f} | {ours / ref:>5.2f} | "
              f"{n / ours:>14,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
