"""Cost of quarantine detection on clean files: a job over the sample as JSON lines and CSV.

`python -m benchmarks.quarantine [EVENTS]` exports the sample events (1M by default) to one
JSON-lines and one CSV file, then times the same SQL job with quarantine detection and with it
switched off (the reference: what a run cost before), side by side.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from huntlab.catalog.store import DatasetEntry
from huntlab.demo import load_sample
from huntlab.jobs import quarantine
from huntlab.jobs.runner import run_job
from huntlab.workspace import Workspace

JOB = (
    "-- output: by_family\n"
    "SELECT family, count(*) AS n, sum(hit_count) AS hits FROM {src} GROUP BY 1\n"
)


def _export(ws: Workspace, root: Path) -> None:
    """The sample as JSON lines and CSV, added as external datasets."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    events = ws.engine("duckdb")
    table = events.sql("SELECT * FROM events")  # noqa: F841 - scanned by name below
    events.close()
    con.register("t", table)
    for fmt, opts in (("jsonl", "(FORMAT json)"), ("csv", "(FORMAT csv, HEADER)")):
        path = root / f"events.{fmt}"
        con.execute(f"COPY t TO '{path}' {opts}")  # benchmark-owned paths, no user input
        ws.store.add_dataset(
            DatasetEntry(name=f"ev_{fmt}", kind="external", format=fmt, location=str(path))
        )
        (ws.jobs_dir / f"by_{fmt}.sql").write_text(JOB.format(src=f"ev_{fmt}"))


def _time(ws: Workspace, job: str, detect: bool) -> float:
    original = quarantine.collect
    if not detect:
        quarantine.collect = lambda *_a, **_k: {}  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        res = run_job(ws, job, engine_name="duckdb")
        assert not res.quarantined
        return time.perf_counter() - start
    finally:
        quarantine.collect = original  # type: ignore[assignment]


def main(n: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = Workspace.init(root / "ws")
        load_sample(ws, n)
        _export(ws, root)
        print(f"{'input':8} {'without (s)':>12} {'with (s)':>10} {'ratio':>7}   ({n:,} events)")
        for fmt in ("jsonl", "csv"):
            _time(ws, f"by_{fmt}", False)  # warm the page cache
            base = min(_time(ws, f"by_{fmt}", False) for _ in range(2))
            new = min(_time(ws, f"by_{fmt}", True) for _ in range(2))
            print(f"{fmt:8} {base:12.2f} {new:10.2f} {new / base:7.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
