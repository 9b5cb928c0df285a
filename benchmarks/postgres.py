"""The PostgreSQL connector against PostgreSQL's own COPY to and from a file, side by side.

Starts a throw-away PostgreSQL 15 (the test fixture's server: Debian binaries, loopback, fsync off
for both sides alike), generates telemetry events (huntlab.sample) and times, per size:

- read            : connector.read() of the whole table into Arrow  vs  COPY table TO file (binary)
- write (new)     : connector.write(overwrite) creating the table    vs  COPY FROM file (binary)
- overwrite       : connector.write(overwrite) of an existing table (new table, swap in one txn)
- append          : connector.write(append) into an existing table
- upsert          : connector.write(merge, keys=[event_id]) into a keyed table holding half of the
                    rows with other values (half updated, half inserted); beside it the same
                    upsert done by the server alone (COPY file into a temp table, INSERT ON
                    CONFLICT), to show what the upsert itself costs in PostgreSQL
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
COPY_IN = "COPY FROM file"
COPY_OUT = "COPY TO file"


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


def run_size(server: Any, n: int, repeat: int) -> list[tuple[str, float, str, float]]:
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

    rows: list[tuple[str, float, str, float]] = []
    # write (new table) vs COPY FROM a binary file into an empty table of the same definition
    w_new = best(lambda: target.write(events, "overwrite"), repeat,
                 before=lambda: sql("DROP TABLE IF EXISTS events"))  # fmt: skip
    sql(f"COPY events TO '{path}' (FORMAT binary)", "CREATE TABLE ref (LIKE events)")
    copy_in = best(lambda: sql(f"COPY ref FROM '{path}' (FORMAT binary)"), repeat,
                   before=lambda: sql("TRUNCATE ref"))  # fmt: skip
    rows.append(("write (new table)", w_new, COPY_IN, copy_in))
    # read vs COPY TO a binary file
    got: list[pa.Table] = []
    read = best(lambda: got.append(target.read()), repeat)
    assert got[-1].num_rows == n, "the read lost rows"
    copy_out = best(lambda: sql(f"COPY events TO '{path}' (FORMAT binary)"), repeat)
    rows.insert(0, ("read", read, COPY_OUT, copy_out))
    rows.append(("overwrite (swap)", best(lambda: target.write(events, "overwrite"), repeat),
                 COPY_IN, copy_in))  # fmt: skip
    append = best(lambda: target.write(events, "append"), repeat, lambda: sql("TRUNCATE events"))
    rows.append(("append", append, COPY_IN, copy_in))
    # upsert: half the keys exist with other values (updated), half are new (inserted)
    half = n // 2
    older = events.slice(0, half).set_column(
        events.schema.get_field_index("hit_count"), "hit_count",
        pa.array([-1] * half, pa.int64()),
    )  # fmt: skip

    def reset_keyed() -> None:
        sql("TRUNCATE events")
        target.write(older, "append")

    sql("TRUNCATE events", "ALTER TABLE events ADD PRIMARY KEY (event_id)")
    upsert = best(lambda: target.write(events, "merge", keys=["event_id"]), repeat, reset_keyed)
    rows.append(("upsert (half new)", upsert, COPY_IN, copy_in))
    cols = ", ".join(f'"{c}"' for c in events.column_names if c != "event_id")
    server_upsert = (
        f"BEGIN; CREATE TEMP TABLE st (LIKE events); COPY st FROM '{path}' (FORMAT binary); "
        f"INSERT INTO events AS t SELECT * FROM st ON CONFLICT (event_id) DO UPDATE SET "
        f"({cols}) = ROW({', '.join('EXCLUDED.' + c for c in cols.split(', '))}) "
        f"WHERE ROW({', '.join('t.' + c for c in cols.split(', '))}) IS DISTINCT FROM "
        f"ROW({', '.join('EXCLUDED.' + c for c in cols.split(', '))}); DROP TABLE st; COMMIT"
    )
    ref = best(lambda: sql(server_upsert), repeat, reset_keyed)
    rows.append(("upsert (half new)", upsert, "same upsert in SQL from file", ref))
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
            for op, ours, ref_name, ref in run_size(server, n, args.repeat):
                results.append((n, op, ours, ref_name, ref))
                print(f"  {op:<18} huntlab {ours:7.2f}s  {ref_name} {ref:7.2f}s  x{ours / ref:.2f}")
    finally:
        server.stop()
    print()
    print(f"| {'rows':>9} | {'operation':<18} | {'huntlab s':>9} | {'reference':<28} | "
          f"{'ref s':>7} | {'ratio':>5} | {'huntlab rows/s':>14} |")  # fmt: skip
    print(f"|{'-' * 11}|{'-' * 20}|{'-' * 11}|{'-' * 30}|{'-' * 9}|{'-' * 7}|{'-' * 16}|")
    for n, op, ours, ref_name, ref in results:
        print(f"| {n:>9,} | {op:<18} | {ours:>9.2f} | {ref_name:<28} | {ref:>7.2f} | "
              f"{ours / ref:>5.2f} | {n / ours:>14,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
