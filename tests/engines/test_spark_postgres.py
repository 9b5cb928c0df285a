"""PostgreSQL datasets on Spark: read over JDBC in parallel ranges, same answer as the embedded
engine (both against the real server started by the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from huntlab.connectors.base import connector_for
from huntlab.connectors.postgres import jdbc_partitioning, postgres_entry
from huntlab.workspace import Workspace
from tests.conformance.test_conformance import canonical
from tests.connectors.test_postgres import ALL_TYPES_DDL, ALL_TYPES_ROW, _sql
from tests.engines.both_engines import on_both

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

QUERY = """SELECT name, count(*) AS n, sum(big) AS big, max(at_utc) AS last, max(day) AS day,
  max(uid) AS uid, sum(size(tags)) AS tags, max(price) AS price
FROM typed GROUP BY name"""


@pytest.fixture()
def pg_ws(tmp_path: Path, postgres_server: Any, postgres_connection: Any) -> Workspace:
    db = postgres_connection.database
    _sql(
        postgres_server,
        db,
        ALL_TYPES_DDL,
        ALL_TYPES_ROW,
        "INSERT INTO typed (id, big, name, at_utc, tags) SELECT g, g * 10, 'fam' || (g % 7), "
        "now(), ARRAY['x'] FROM generate_series(3, 5000) g",
    )
    ws = Workspace.init(tmp_path / "ws")
    ws.store.add_dataset(postgres_entry("typed", "test", postgres_connection, table="typed"))
    return ws


def test_jdbc_read_is_partitioned_and_matches_the_embedded_engine(pg_ws: Workspace) -> None:
    conn = connector_for(pg_ws.store.get_dataset("typed"))
    plan = jdbc_partitioning(conn, 4)  # type: ignore[arg-type]
    assert plan == {
        "partitionColumn": '"id"',
        "lowerBound": "1",
        "upperBound": "5000",
        "numPartitions": "4",
    }
    partitions, on_spark, embedded = on_both(pg_ws, "typed", QUERY)
    assert partitions >= 2
    assert embedded.num_rows == 9  # Emotet, NULL and fam0..fam6
    assert on_spark.schema.names == embedded.schema.names
    assert canonical(on_spark) == canonical(embedded)
