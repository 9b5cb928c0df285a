"""The job runner: SQL, Python and map-reduce jobs end to end, atomic writes, runs and lineage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from huntlab.connectors.base import connector_for
from huntlab.errors import DatasetNotFound, JobError, SqlError, UnsupportedOnEngine
from huntlab.jobs.runner import run_job
from huntlab.jobs.spec import parse_sql_job


def _write(ws, name: str, text: str) -> Path:
    p = ws.jobs_dir / name
    p.write_text(text)
    return p


def test_sql_header_parsing() -> None:
    spec = parse_sql_job(
        "-- name: x\n-- output: out\n-- mode: merge\n-- key: a, b\n-- params: n=5, since\n"
        "SELECT 1 AS a;\n"
    )
    assert (spec.name, spec.output, spec.mode, spec.keys) == ("x", "out", "merge", ["a", "b"])
    assert spec.params == {"n": "5", "since": ""}
    assert spec.sql == "SELECT 1 AS a"
    with pytest.raises(JobError, match="unknown write mode"):
        parse_sql_job("-- mode: upsert\nSELECT 1")
    with pytest.raises(JobError, match="unknown header"):
        parse_sql_job("-- outptu: x\nSELECT 1")
    with pytest.raises(JobError, match="needs key"):
        parse_sql_job("-- mode: merge\nSELECT 1")


def test_sql_job_writes_output_and_records_lineage(demo_ws) -> None:
    res = run_job(demo_ws, "family_prevalence")
    assert res.rows_out > 10
    out = connector_for(demo_ws.store.get_dataset("family_prevalence")).read()
    assert out.num_rows == res.rows_out
    assert out.schema.field("detections").type == pa.int64()
    assert out.schema.field("first_seen").type == pa.timestamp("us", tz="UTC")
    run = demo_ws.store.list_runs("family_prevalence")[0]
    assert run.status == "succeeded" and run.rows_out == res.rows_out
    assert run.rows_in == 20_000
    assert run.inputs == {"events": "0"} and run.outputs == {"family_prevalence": "0"}


def test_integer_sums_stay_bigint(demo_ws) -> None:
    _write(
        demo_ws,
        "s.sql",
        "-- output: s\nSELECT family, sum(hit_count) AS hits FROM events GROUP BY family",
    )
    res = run_job(demo_ws, "s")
    assert res.table.schema.field("hits").type == pa.int64()


def test_params_are_bound_and_checked(demo_ws) -> None:
    _write(
        demo_ws,
        "p.sql",
        "-- output: p\n-- params: fam\nSELECT count(*) AS n FROM events WHERE family = :fam",
    )
    with pytest.raises(JobError, match="needs parameter"):
        run_job(demo_ws, "p")
    hostile = "x' OR '1'='1"
    assert run_job(demo_ws, "p", {"fam": hostile}).table.column("n").to_pylist() == [0]
    with pytest.raises(JobError, match="no parameter"):
        run_job(demo_ws, "p", {"fam": "Emotet", "other": "1"})


def test_python_job_on_duckdb(demo_ws) -> None:
    res = run_job(demo_ws, "hash_first_seen")
    assert res.rows_out > 0
    assert set(res.table.column_names) >= {"file_hash", "first_seen", "last_seen", "clients"}
    # merge by key: running it again keeps one row per hash
    run_job(demo_ws, "hash_first_seen")
    out = connector_for(demo_ws.store.get_dataset("hash_first_seen")).read()
    assert out.num_rows == res.rows_out
    assert [
        h["operation"]
        for h in connector_for(demo_ws.store.get_dataset("hash_first_seen")).history()
    ] == ["MERGE", "WRITE"]


def test_mapreduce_job_matches_sql(demo_ws) -> None:
    mr = run_job(demo_ws, "hits_by_family").table
    eng = demo_ws.engine()
    sql = eng.sql(
        "SELECT family, sum(hit_count) AS hits, count(*) AS reports FROM events "
        "WHERE event_type = 'detection_hits' AND family IS NOT NULL GROUP BY family"
    )
    eng.close()

    def key(t):
        return sorted(
            t.select(["family", "hits", "reports"]).to_pylist(), key=lambda r: r["family"]
        )

    assert key(mr) == key(sql)


def test_failed_job_leaves_previous_output(demo_ws) -> None:
    run_job(demo_ws, "family_prevalence")
    before = connector_for(demo_ws.store.get_dataset("family_prevalence")).read()
    _write(
        demo_ws,
        "family_prevalence.sql",
        "-- output: family_prevalence\nSELECT family, 1/0 AS x, no_such_col FROM events",
    )
    with pytest.raises(SqlError):
        run_job(demo_ws, "family_prevalence")
    c = connector_for(demo_ws.store.get_dataset("family_prevalence"))
    assert c.version() == "0" and c.read().equals(before)
    runs = demo_ws.store.list_runs("family_prevalence")
    assert runs[0].status == "failed" and "no_such_col" in runs[0].error


def test_killed_job_leaves_previous_output(demo_ws) -> None:
    run_job(demo_ws, "family_prevalence")
    before = connector_for(demo_ws.store.get_dataset("family_prevalence")).read()
    _write(
        demo_ws,
        "slow.py",
        """
import time
from huntlab import job

@job(output="family_prevalence")
def slow(events):
    time.sleep(60)
    return events
""",
    )
    env = {**os.environ, "HUNTLAB_WORKSPACE": str(demo_ws.root)}
    proc = subprocess.Popen([sys.executable, "-m", "huntlab.cli", "run", "slow"], env=env)
    deadline = time.time() + 30
    while time.time() < deadline and not any(
        r.job == "slow" for r in demo_ws.store.list_runs("slow")
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    c = connector_for(demo_ws.store.get_dataset("family_prevalence"))
    assert c.version() == "0" and c.read().equals(before)
    assert demo_ws.store.list_runs("slow")[0].status == "interrupted"


def test_unknown_dataset_lists_known(demo_ws) -> None:
    _write(demo_ws, "bad.sql", "SELECT * FROM detections")
    with pytest.raises(DatasetNotFound, match="known: events"):
        run_job(demo_ws, "bad")


def test_unknown_job_lists_known(demo_ws) -> None:
    with pytest.raises(JobError, match="family_prevalence"):
        run_job(demo_ws, "no_such_job")


def test_unsupported_construct_names_engine(demo_ws) -> None:
    _write(
        demo_ws,
        "r.py",
        """
from huntlab import job

@job()
def r(events):
    return events.rdd.map(lambda x: x)
""",
    )
    with pytest.raises(UnsupportedOnEngine, match="spark"):
        run_job(demo_ws, "r")


def test_python_job_exception_is_a_job_error(demo_ws) -> None:
    _write(
        demo_ws,
        "boom.py",
        """
from huntlab import job

@job()
def boom(events):
    raise ValueError("bad threshold")
""",
    )
    with pytest.raises(JobError, match="ValueError: bad threshold"):
        run_job(demo_ws, "boom")
