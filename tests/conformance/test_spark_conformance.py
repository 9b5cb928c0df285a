"""Conformance of the embedded engine with Apache Spark: the same jobs and queries, same answers.

Every bundled job and every corpus case (spark_corpus.py) runs on DuckDB (Spark SQL transpiled,
the PySpark API through SQLFrame) and on PySpark local[2] over the same sample events; outputs are
normalised as the runner does and compared sorted (in order where ORDER BY is under test), with
column types. Known gaps are strict xfails: the embedded engine must refuse them.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from huntlab.demo import DEMO_JOBS
from huntlab.errors import UnsupportedOnEngine
from huntlab.jobs.normalize import normalize_table
from huntlab.jobs.runner import run_job
from tests.conformance.spark_corpus import CASES, FRAMES, SQL, Case

pytestmark = pytest.mark.spark


def rows(table: pa.Table, ordered: bool = False) -> list[tuple]:
    """Rows as tuples in column order, floats rounded (engines sum in any order)."""
    out = []
    for r in table.to_pylist():
        out.append(tuple(_plain(v) for v in r.values()))
    return out if ordered else sorted(out, key=repr)


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else str(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def assert_same(duck: pa.Table, spark: pa.Table, ordered: bool = False) -> None:
    """Same columns, same types and same rows after the runner's normalisation."""
    duck, spark = normalize_table(duck), normalize_table(spark)
    assert duck.column_names == spark.column_names
    differ = [(f.name, f.type, g.type) for f, g in zip(duck.schema, spark.schema) if f != g]
    assert not differ, f"column types differ (name, duckdb, spark): {differ}"
    assert rows(duck, ordered) == rows(spark, ordered)


@pytest.fixture(scope="module")
def engines(sample_ws, spark_ws):
    """One DuckDB engine and one Spark engine (the shared session) over the sample events."""
    duck, spark = sample_ws.engine("duckdb"), spark_ws.engine("spark")
    # Spark reuses a cached plan for every later scan of the same snapshot: one read, not 100.
    cached = spark.dataframe("events").cache()
    cached.count()
    yield duck, spark
    cached.unpersist()
    duck.close()
    spark.close()


def run_case(engine: Any, case: Case) -> pa.Table:
    """Run a corpus case on one engine."""
    if case.sql is not None:
        return engine.sql(case.sql)
    assert case.frame is not None
    with engine.python_context():
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        events = engine.dataframe("events")
        return engine.to_arrow(case.frame(events, F, Window))


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, raises=UnsupportedOnEngine, reason=case.gap)]
    return pytest.param(case, id=case.id, marks=marks if case.gap else [])


def test_corpus_size() -> None:
    assert len(CASES) >= 60 and len(SQL) >= 50 and len(FRAMES) >= 10
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_corpus_case(engines, case: Case) -> None:
    duck_engine, spark_engine = engines
    spark = run_case(spark_engine, case)  # Spark first: every case must at least run there
    duck = run_case(duck_engine, case)
    if case.id == "approx_count_distinct":
        for table in (duck, spark):  # HyperLogLog++ with the default 5% relative error
            approx, exact = table.column("approx")[0].as_py(), table.column("exact")[0].as_py()
            assert abs(approx - exact) <= 0.05 * 2 * exact
        return
    assert_same(duck, spark, case.ordered)


@pytest.mark.parametrize("job", [name for name, _ in DEMO_JOBS])
def test_bundled_job_same_on_both_engines(sample_ws, spark_ws, job: str) -> None:
    duck = run_job(sample_ws, job, engine_name="duckdb", write=False).table
    spark = run_job(spark_ws, job, engine_name="spark", write=False).table
    assert duck.num_rows > 0
    assert duck.schema == spark.schema
    assert rows(duck) == rows(spark)
