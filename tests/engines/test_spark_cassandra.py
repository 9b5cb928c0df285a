"""Cassandra datasets on Spark: one task per token range through huntlab's connector, same
answer as the embedded engine (against the real node started by the tests)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from huntlab.jobs.normalize import normalize_table
from huntlab.workspace import Workspace
from tests.conformance.test_conformance import canonical
from tests.connectors.test_cassandra import dataset, new_table

pytestmark = [pytest.mark.spark, pytest.mark.cassandra]

QUERY = """SELECT family, count(*) AS n, sum(hits) AS hits, max(ts) AS last
FROM hits_state GROUP BY family"""


def test_token_ranges_become_spark_tasks(cassandra_ws, cassandra_node, cassandra_keyspace) -> None:
    table = new_table(
        cassandra_node, cassandra_keyspace, "id bigint, family text, hits int, ts timestamp", "id"
    )
    conn = dataset(cassandra_ws, cassandra_keyspace, table, name="hits_state", splits=5)
    n = 3000
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    conn.write(
        pa.table(
            {
                "id": pa.array(range(n), pa.int64()),
                "family": [f"fam{i % 6}" for i in range(n)],
                "hits": pa.array([i % 50 for i in range(n)], pa.int32()),
                "ts": pa.array(
                    [t0 + dt.timedelta(minutes=i) for i in range(n)], pa.timestamp("ms", tz="UTC")
                ),
            }
        )
    )
    cfg = cassandra_ws.config.model_copy(deep=True)
    cfg.engine.type, cfg.engine.master, cfg.engine.shuffle_partitions = "spark", "local[2]", 4
    spark_engine = Workspace(cassandra_ws.root, cfg).engine()
    try:
        spark_engine.register(["hits_state"])
        df = spark_engine.dataframe("hits_state")
        assert df.rdd.getNumPartitions() == 5 and df.count() == n
        on_spark = normalize_table(spark_engine.sql(QUERY))
    finally:
        spark_engine.close()
    duck = cassandra_ws.engine("duckdb")
    try:
        duck.register(["hits_state"])
        embedded = normalize_table(duck.sql(QUERY))
    finally:
        duck.close()
    assert embedded.num_rows == 6
    assert canonical(on_spark) == canonical(embedded)
