"""Conformance: every bundled job gives the same sorted output as the same logic in another form.

On this engine (DuckDB) the pairs are: Python (SQLFrame) or map-reduce jobs against the same
question in Spark SQL (transpiled), and SQL jobs against the same question in the PySpark API.
The Spark engine will add a column to this table: the same jobs on Spark.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from huntlab.demo import DEMO_JOBS
from huntlab.jobs.runner import run_job

HERE = Path(__file__).parent / "equivalents"
PAIRS = {
    "hash_first_seen": "hash_first_seen.sql",
    "top_blocked_domains": "top_blocked_domains.sql",
    "hits_by_family": "hits_by_family.sql",
    "family_prevalence": "family_prevalence.py",
}


def canonical(table: pa.Table) -> list[tuple]:
    """Rows as sorted tuples, columns in name order, floats rounded (engines sum in any order)."""
    names = sorted(table.column_names)
    rows = []
    for r in table.select(names).to_pylist():
        rows.append(
            tuple(
                round(v, 6) if isinstance(v, float) and math.isfinite(v) else v for v in r.values()
            )
        )
    return sorted(rows, key=repr)


def test_every_bundled_job_has_a_counterpart_or_is_sql() -> None:
    assert {name for name, _ in DEMO_JOBS} - set(PAIRS) <= {
        "rising_families",
        "crash_rate_by_version",
    }


@pytest.mark.parametrize("job", sorted(PAIRS))
def test_job_matches_its_counterpart(sample_ws, tmp_path: Path, job: str) -> None:
    got = run_job(sample_ws, job, write=False).table
    counterpart = HERE / PAIRS[job]
    target = sample_ws.jobs_dir / f"_conf_{counterpart.name}"
    shutil.copyfile(counterpart, target)
    try:
        want = run_job(sample_ws, str(target), write=False).table
    finally:
        target.unlink()
    assert got.num_rows > 0
    assert sorted(got.column_names) == sorted(want.column_names)
    for name in got.column_names:
        assert got.schema.field(name).type == want.schema.field(name).type, name
    assert canonical(got) == canonical(want)
