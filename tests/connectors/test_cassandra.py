"""The Cassandra connector against the real node: types, pushdown, upserts, counters, TTL."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import itertools
import uuid

import pyarrow as pa
import pytest

from huntlab.catalog.store import DatasetEntry
from huntlab.connectors.base import Filter, connector_for
from huntlab.errors import InputError

pytestmark = pytest.mark.cassandra
_names = itertools.count()


def new_table(node, ks: str, columns: str, key: str) -> str:
    """Create a fresh table with CQL written by the test; returns its name."""
    name = f"t{next(_names)}"
    node.query(f"CREATE TABLE {ks}.{name} ({columns}, PRIMARY KEY ({key}))")
    return name


def dataset(ws, ks: str, table: str, name: str | None = None, **options) -> object:
    """Add a catalog dataset over the table and return its connector."""
    entry = DatasetEntry(
        name or table,
        "external",
        "cassandra",
        f"{ks}.{table}",
        options={"connection": "cass", "workspace": str(ws.root), **options},
    )
    ws.store.add_dataset(entry, replace=True)
    return connector_for(entry)


ALL_TYPES = """k text, a ascii, ti tinyint, si smallint, i int, b bigint, vi varint,
    de decimal, f float, d double, bo boolean, ts timestamp, da date, tm time, u uuid,
    tu timeuuid, ip inet, bl blob, du duration, li list<int>, se set<text>,
    ma map<text, bigint>, nested list<frozen<map<text, date>>>"""


def all_types_data() -> pa.Table:
    rows = {
        "k": ["a", "b", "c"],
        "a": ["plain", None, ""],
        "ti": [1, -128, 127],
        "si": [2, -32768, None],
        "i": [3, -(2**31), 2**31 - 1],
        "b": [4, -(2**63), 2**63 - 1],
        "vi": [decimal.Decimal(10**30), decimal.Decimal(-5), None],
        "de": [decimal.Decimal("1.5"), decimal.Decimal("-0.000000001"), None],
        "f": [1.5, -0.25, None],
        "d": [2.5, 1e300, float("-inf")],
        "bo": [True, False, None],
        "ts": [
            dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC),
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
            None,
        ],
        "da": [dt.date(2024, 2, 29), dt.date(1, 1, 1), None],
        "tm": [dt.time(23, 59, 59, 999999), dt.time(0, 0), None],
        "u": [str(uuid.UUID(int=1)), str(uuid.uuid4()), None],
        "tu": [str(uuid.uuid1()), None, None],
        "ip": ["10.0.0.1", "::1", None],
        "bl": [b"\x00\xff", b"", None],
        "du": [pa.MonthDayNano([1, 2, 3]), pa.MonthDayNano([0, 0, 0]), None],
        "li": [[1, 2, 3], [], None],
        "se": [["x", "y"], ["only"], None],
        "ma": [[("hits", 10), ("miss", -1)], [], None],
        "nested": [[[("d", dt.date(2020, 1, 1))]], None, None],
    }
    types = {
        "ti": pa.int8(),
        "si": pa.int16(),
        "i": pa.int32(),
        "vi": pa.decimal128(38, 0),
        "de": pa.decimal128(20, 9),
        "f": pa.float32(),
        "ts": pa.timestamp("ms", tz="UTC"),
        "tm": pa.time64("us"),
        "bl": pa.binary(),
        "du": pa.month_day_nano_interval(),
        "li": pa.list_(pa.int32()),
        "ma": pa.map_(pa.string(), pa.int64()),
        "nested": pa.list_(pa.map_(pa.string(), pa.date32())),
    }
    return pa.table({k: pa.array(v, type=types.get(k)) for k, v in rows.items()})


def test_node_answers(cassandra_node) -> None:
    (version,) = cassandra_node.query("SELECT release_version FROM system.local")[0]
    assert str(version).startswith("5.0")
    assert cassandra_node.started_in < 120
    print(
        f"\nCassandra {version} started in {cassandra_node.started_in:.1f}s, memory MiB: "
        f"{cassandra_node.memory_mb()}"
    )


def test_every_type_round_trips(cassandra_ws, cassandra_node, cassandra_keyspace) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, ALL_TYPES, "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    data = all_types_data()
    conn.write(data)
    back = conn.read().sort_by("k")
    assert back.num_rows == 3
    for name in data.column_names:
        got, want = back.column(name).to_pylist(), data.column(name).to_pylist()
        if name == "a":
            want = ["plain", None, ""]
        if name == "de":
            want = [v if v is None else decimal.Decimal(v) for v in want]
        if name == "tm":
            want = [
                None
                if v is None
                else v.hour * 3600e9 + v.minute * 60e9 + v.second * 1e9 + v.microsecond * 1e3
                for v in want
            ]
            got = [
                None
                if v is None
                else v.value
                if hasattr(v, "value")
                else v.hour * 3600e9 + v.minute * 60e9 + v.second * 1e9 + v.microsecond * 1e3
                for v in got
            ]
        if name in ("li", "se", "ma") and want[1] == []:
            want[1] = None  # Cassandra stores an empty collection as no value
        if name == "ip":
            want = [None if v is None else str(ipaddress.ip_address(v)) for v in want]
        assert got == want, name
    assert conn.schema().field("u").type == pa.string()
    assert conn.schema().field("nested").type == pa.list_(pa.map_(pa.string(), pa.date32()))


def test_partition_key_pushdown_queries_single_partitions(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(
        cassandra_node,
        cassandra_keyspace,
        "h text, day date, n int, v double",
        "(h), day, n",
    )
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    days = [dt.date(2024, 1, d) for d in range(1, 11)]
    conn.write(
        pa.table(
            {
                "h": [f"h{i % 20}" for i in range(200)],
                "day": [days[i % 10] for i in range(200)],
                "n": list(range(200)),
                "v": [float(i) for i in range(200)],
            }
        )
    )
    filters = [
        Filter("h", "in", ["h3", "h5"]),
        Filter("day", ">=", dt.date(2024, 1, 4)),
        Filter("v", ">", 50.0),
    ]
    plan = conn.plan(["n", "v"], filters)
    assert plan.kind == "partitions" and len(plan.params) == 2
    assert "token(" not in plan.cql and '"day" >= ?' not in plan.cql and "day >= ?" in plan.cql
    assert [f.column for f in plan.residual] == ["v"]
    # The server confirms: the planned statement reads one partition, not a range scan.
    session = conn.session()
    prepared = session.prepare(plan.cql)
    events = [
        e.description
        for e in session.execute(prepared, plan.params[0], trace=True).get_query_trace().events
    ]
    assert any("single-partition" in e.lower() for e in events), events
    assert not any("range" in e.lower() and "scan" in e.lower() for e in events), events
    got = conn.read(["n", "v"], filters)
    want = sorted(i for i in range(200) if i % 20 in (3, 5) and i % 10 >= 3 and i > 50)
    assert sorted(got.column("n").to_pylist()) == want
    assert got.column_names == ["n", "v"]
    # Without the partition key the read scans token ranges and filters in Arrow.
    plan = conn.plan(None, [Filter("n", "=", 7)])
    assert plan.kind == "token_ranges" and len(plan.params) == 16
    assert conn.read(None, [Filter("n", "=", 7)]).column("h").to_pylist() == ["h7"]


def test_token_range_read_returns_every_row_once(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "id bigint, s text", "id")
    conn = dataset(cassandra_ws, cassandra_keyspace, table, splits=7, page_size=100)
    n = 5000
    conn.write(pa.table({"id": list(range(n)), "s": [str(i) for i in range(n)]}))
    got = conn.read()
    assert sorted(got.column("id").to_pylist()) == list(range(n))


def test_upsert_replaces_by_key_and_unset_nulls_keep_values(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "k int, a text, b int", "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    conn.write(pa.table({"k": [1, 2], "a": ["x", "y"], "b": [10, 20]}))
    conn.write(pa.table({"k": [2, 3], "a": ["Y", "z"], "b": pa.array([None, 30], pa.int64())}))
    got = conn.read().sort_by("k").to_pylist()
    assert got == [
        {"k": 1, "a": "x", "b": 10},
        {"k": 2, "a": "Y", "b": 20},  # null did not overwrite: it is written as "unset"
        {"k": 3, "a": "z", "b": 30},
    ]


def test_clustered_rows_are_batched_per_partition(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "p int, c int, v text", "(p), c")
    conn = dataset(cassandra_ws, cassandra_keyspace, table, batch_rows=7)
    data = pa.table({"p": [i % 3 for i in range(300)], "c": list(range(300)), "v": ["x"] * 300})
    conn.write(data)
    assert conn.read().num_rows == 300


def test_counters_add(cassandra_ws, cassandra_node, cassandra_keyspace) -> None:
    table = new_table(
        cassandra_node,
        cassandra_keyspace,
        "file_hash text, day date, hits counter",
        "(file_hash), day",
    )
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    day = dt.date(2024, 5, 1)
    batch = pa.table(
        {
            "file_hash": ["aa", "bb", "aa"],
            "day": [day, day, day + dt.timedelta(1)],
            "hits": [5, 1, 2],
        }
    )
    conn.write(batch)
    conn.write(batch)
    got = {(r["file_hash"], r["day"]): r["hits"] for r in conn.read().to_pylist()}
    assert got == {("aa", day): 10, ("bb", day): 2, ("aa", day + dt.timedelta(1)): 4}
    with pytest.raises(InputError, match="TTL"):
        conn.write(batch, ttl=10)


def test_ttl_is_applied(cassandra_ws, cassandra_node, cassandra_keyspace) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "k int, v text", "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table, ttl=3600)
    conn.write(pa.table({"k": [1], "v": ["kept an hour"]}))
    conn.write(pa.table({"k": [2], "v": ["gone soon"]}), ttl=2)
    ttls = dict(cassandra_node.query(f"SELECT k, TTL(v) FROM {cassandra_keyspace}.{table}"))
    assert 3500 < ttls[1] <= 3600 and ttls.get(2, 0) <= 2
    import time

    time.sleep(2.2)
    assert conn.read().column("k").to_pylist() == [1]
    with pytest.raises(InputError, match="positive"):
        conn.write(pa.table({"k": [3], "v": ["x"]}), ttl=0)


def test_overwrite_loads_a_new_table_and_switches_the_catalog(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "k int, v text", "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table, name="state")
    conn.write(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    assert conn.version() is None
    first = conn.write(pa.table({"k": [9], "v": ["new"]}), mode="overwrite")
    assert first == f"{table}_v1"
    entry = cassandra_ws.store.get_dataset("state")
    assert entry.location == f"{cassandra_keyspace}.{table}_v1"
    assert connector_for(entry).read().to_pylist() == [{"k": 9, "v": "new"}]
    # the user's own table is untouched and kept
    assert len(cassandra_node.query(f"SELECT k FROM {cassandra_keyspace}.{table}")) == 3
    second = connector_for(entry).write(pa.table({"k": [7], "v": ["x"]}), mode="overwrite")
    assert second == f"{table}_v2"
    third = connector_for(cassandra_ws.store.get_dataset("state")).write(
        pa.table({"k": [8], "v": ["y"]}), mode="overwrite"
    )
    assert third == f"{table}_v3"
    tables = {
        r[0]
        for r in cassandra_node.query(
            "SELECT table_name FROM system_schema.tables "
            f"WHERE keyspace_name = '{cassandra_keyspace}'"
        )
    }
    # one generation back is kept for readers still on it; older generations are dropped
    assert {table, f"{table}_v2", f"{table}_v3"} <= tables and f"{table}_v1" not in tables


def test_failed_overwrite_keeps_the_old_mapping(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "k int, v int", "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table, name="keep")
    conn.write(pa.table({"k": [1], "v": [1]}))
    with pytest.raises(InputError, match="'v' is int"):
        conn.write(pa.table({"k": [2], "v": ["not a number"]}), mode="overwrite")
    entry = cassandra_ws.store.get_dataset("keep")
    assert entry.location == f"{cassandra_keyspace}.{table}"
    assert connector_for(entry).read().to_pylist() == [{"k": 1, "v": 1}]
    names = [
        r[0]
        for r in cassandra_node.query(
            "SELECT table_name FROM system_schema.tables "
            f"WHERE keyspace_name = '{cassandra_keyspace}'"
        )
    ]
    assert f"{table}_v1" not in names


def test_a_job_output_creates_the_table_from_its_keys(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    conn = dataset(cassandra_ws, cassandra_keyspace, f"made{next(_names)}", name="made")
    data = pa.table({"file_hash": ["a", "b"], "day": [dt.date(2024, 1, 1)] * 2, "n": [1, 2]})
    conn.write(data, mode="merge", keys=["file_hash", "day"])
    cols = {c.name: c.kind for c in conn.columns()}
    assert cols == {"file_hash": "partition_key", "day": "clustering", "n": "regular"}
    assert conn.read().sort_by("file_hash").to_pylist() == data.to_pylist()
