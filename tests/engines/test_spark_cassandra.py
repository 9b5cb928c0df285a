"""Cassandra datasets on Spark: one task per token range through huntlab's connector, same
answer as the embedded engine (against the real node started by the tests)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from tests.conformance.test_conformance import canonical
from tests.connectors.test_cassandra import dataset, new_table
from tests.engines.both_engines import on_both

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
    partitions, on_spark, embedded = on_both(cassandra_ws, "hits_state", QUERY)
    assert partitions == 5 and on_spark.num_rows == 6
    assert embedded.num_rows == 6
    assert canonical(on_spark) == canonical(embedded)
