"""Public outputs keep only groups with at least k distinct clients, and say how many went."""

from __future__ import annotations

import pytest

from huntlab.errors import JobError
from huntlab.jobs.runner import run_job

PUBLIC = """-- name: {name}
-- output: {name}
-- public: {public}
SELECT family, country, {clients} FROM events WHERE family IS NOT NULL GROUP BY family, country
"""
COUNT = "count(DISTINCT client_id) AS clients"


def test_public_job_suppresses_small_groups(demo_ws) -> None:
    (demo_ws.jobs_dir / "pub.sql").write_text(
        PUBLIC.format(name="pub", clients=COUNT, public="true")
    )
    (demo_ws.jobs_dir / "all.sql").write_text(
        PUBLIC.format(name="all", clients=COUNT, public="false")
    )
    every = run_job(demo_ws, "all", write=False).table
    assert run_job(demo_ws, "all", write=False).suppressed_groups is None
    small = sum(1 for c in every.column("clients").to_pylist() if c < 10)
    assert small > 0
    res = run_job(demo_ws, "pub")
    assert res.suppressed_groups == small
    assert min(res.table.column("clients").to_pylist()) >= 10
    assert res.rows_out == every.num_rows - small


def test_public_job_without_a_client_count_is_refused(demo_ws) -> None:
    (demo_ws.jobs_dir / "bad.sql").write_text(
        PUBLIC.format(name="bad", clients="count(*) AS n", public="yes")
    )
    with pytest.raises(JobError, match="no 'clients' column"):
        run_job(demo_ws, "bad")
    assert not demo_ws.store.has_dataset("bad") or not (demo_ws.data_dir / "bad").exists()
