"""The Spark engine over Spark Connect (sc://): SQL and PySpark jobs; map-reduce refused."""

from __future__ import annotations

import pytest

from huntlab.errors import EngineError
from huntlab.jobs.runner import run_job
from huntlab.workspace import Workspace
from tests.conformance.test_spark_conformance import rows

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def connect_ws(sample_ws, spark_connect):
    cfg = sample_ws.config.model_copy(deep=True)
    cfg.engine.type, cfg.engine.master = "spark", spark_connect.url
    return Workspace(sample_ws.root, cfg)


@pytest.mark.parametrize("job", ["rising_families", "top_blocked_domains"])
def test_sql_and_python_jobs_over_connect(connect_ws, sample_ws, job: str) -> None:
    got = run_job(connect_ws, job, write=False)
    want = run_job(sample_ws, job, engine_name="duckdb", write=False).table
    assert got.engine == "spark"
    assert got.table.schema == want.schema
    assert rows(got.table) == rows(want)


def test_mapreduce_is_refused_over_connect(connect_ws) -> None:
    with pytest.raises(EngineError, match="Spark Connect"):
        run_job(connect_ws, "hits_by_family", write=False)
