"""The PostgreSQL connector against the real server: types, pushdown, write modes, faults."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import time
import uuid
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huntlab.connectors.base import Filter, connector_for
from huntlab.connectors.postgres import PostgresConnector, postgres_entry
from huntlab.errors import ConnectorError, InputError
from tests.services.postgres import PostgresServer

pytestmark = pytest.mark.postgres

ALL_TYPES_DDL = """
CREATE TABLE typed (
    id integer PRIMARY KEY, small smallint, big bigint, price numeric(12,3), ratio numeric,
    real4 real, dbl double precision, name text, code varchar(8), flag boolean,
    at_local timestamp, at_utc timestamptz, day date, uid uuid, doc jsonb, tags text[],
    counts integer[]
)"""
ALL_TYPES_ROW = """
INSERT INTO typed VALUES
 (1, 2, 3000000000, 12.345, 0.5, 1.5, 2.25, 'Emotet', 'E1', true, '2026-11-01 10:00:00',
  '2026-11-01 10:00:00+02', '2026-11-01', '5b6f3c4e-8a8d-4e59-9d7a-3f1c2b8e9d10',
  '{"k": [1, 2]}', '{a,b}', '{1,2,3}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL)"""


def _entry(conn: Any, table: str, **kw: Any) -> Any:
    return postgres_entry("ds", "test", conn, table=table, **kw)


def _sql(server: PostgresServer, db: str, *statements: str) -> list[Any]:
    with server.connect(db) as con:
        out: list[Any] = []
        for s in statements:
            cur = con.execute(s)
            out = cur.fetchall() if cur.description else out
        return out


@pytest.fixture()
def typed(postgres_server: PostgresServer, postgres_connection: Any) -> PostgresConnector:
    _sql(postgres_server, postgres_connection.database, ALL_TYPES_DDL, ALL_TYPES_ROW)
    return connector_for(_entry(postgres_connection, "public.typed"))  # type: ignore[return-value]


def test_types_map_to_arrow(typed: PostgresConnector) -> None:
    s = typed.schema()
    expected = {
        "id": pa.int32(), "small": pa.int16(), "big": pa.int64(), "price": pa.decimal128(12, 3),
        "ratio": pa.float64(), "real4": pa.float32(), "dbl": pa.float64(), "name": pa.string(),
        "code": pa.string(), "flag": pa.bool_(), "at_local": pa.timestamp("us"),
        "at_utc": pa.timestamp("us", tz="UTC"), "day": pa.date32(), "uid": pa.string(),
        "doc": pa.string(), "tags": pa.list_(pa.string()), "counts": pa.list_(pa.int32()),
    }  # fmt: skip
    assert {f.name: f.type for f in s} == expected
    row = typed.read(filters=[Filter("id", "=", 1)]).to_pylist()[0]
    assert row["price"] == decimal.Decimal("12.345") and row["big"] == 3_000_000_000
    assert row["at_utc"] == dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    assert row["at_local"] == dt.datetime(2026, 11, 1, 10, 0)
    assert row["uid"] == "5b6f3c4e-8a8d-4e59-9d7a-3f1c2b8e9d10"
    assert row["doc"] == '{"k": [1, 2]}' and row["tags"] == ["a", "b"]
    assert typed.read(filters=[Filter("id", "=", 2)]).to_pylist()[0]["price"] is None


def test_projection_and_filters_are_pushed_with_typed_bound_values(
    typed: PostgresConnector,
) -> None:
    t = typed.read(columns=["id", "name"], filters=[Filter("at_utc", ">=", "2026-11-01")])
    assert t.column_names == ["id", "name"] and t.to_pylist() == [{"id": 1, "name": "Emotet"}]
    uid = "5b6f3c4e-8a8d-4e59-9d7a-3f1c2b8e9d10"
    assert typed.read(["id"], [Filter("uid", "in", [uid, str(uuid.uuid4())])]).num_rows == 1
    assert typed.read(["id"], [Filter("day", "<", dt.date(2026, 11, 1))]).num_rows == 0
    assert typed.read(["id"], [Filter("flag", "!=", False)]).num_rows == 1
    assert typed.read(["id"], [Filter("id", "in", [])]).num_rows == 0
    # A value is data, never SQL: this one is a string that matches nothing.
    assert typed.read(["id"], [Filter("name", "=", "x' OR '1'='1")]).num_rows == 0
    with pytest.raises(InputError, match="unknown column 'nope'"):
        typed.read(filters=[Filter("nope", "=", 1)])


def test_query_dataset_reads_and_refuses_writes(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    _sql(postgres_server, postgres_connection.database, ALL_TYPES_DDL, ALL_TYPES_ROW)
    e = postgres_entry("q", "test", postgres_connection, query="SELECT id, name FROM typed")
    c = connector_for(e)
    assert c.read(filters=[Filter("id", ">", 1)]).to_pylist() == [{"id": 2, "name": None}]
    with pytest.raises(ConnectorError, match="is a query and cannot be written"):
        c.write(pa.table({"id": [1]}))


def test_unmappable_type_names_the_column(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    _sql(postgres_server, postgres_connection.database, "CREATE TABLE geo (id int, spot point)")
    c = connector_for(_entry(postgres_connection, "geo"))
    with pytest.raises(ConnectorError, match="column 'spot' has PostgreSQL type point"):
        c.read()
    assert c.read(columns=["id"]).num_rows == 0


def test_register_in_duckdb_and_join(typed: PostgresConnector) -> None:
    import duckdb

    con = duckdb.connect()
    typed.register(con, "typed")
    got = con.execute(
        "SELECT t.name, e.n FROM typed t JOIN (SELECT 'Emotet' AS family, 7 AS n) e "
        "ON t.name = e.family"
    ).fetchall()
    assert got == [("Emotet", 7)]


def test_write_creates_tables_with_mapped_types_and_reads_back(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    data = pa.table(
        {
            "i16": pa.array([1, None], pa.int16()), "i64": pa.array([2**40, 0], pa.int64()),
            "u32": pa.array([7, 8], pa.uint32()), "dec": pa.array(
                [decimal.Decimal("1.25"), None], pa.decimal128(9, 2)),
            "f": [0.5, None], "s": pa.array(["a", None], pa.large_string()),
            "cat": pa.array(["x", "y"]).dictionary_encode(), "b": [True, False],
            "ts": pa.array([dt.datetime(2026, 1, 1), None], pa.timestamp("ns")),
            "tz": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None],
                           pa.timestamp("us", tz="UTC")),
            "d": [dt.date(2026, 1, 1), None], "l": [["p", "q"], []],
            "u": pa.array([uuid.UUID(int=5).bytes, None], pa.uuid()),
            "j": pa.array(['{"a": 1}', None], pa.json_()),
        }
    )  # fmt: skip
    c = connector_for(_entry(postgres_connection, "made"))
    c.write(data, "overwrite")
    types = dict(
        _sql(
            postgres_server,
            postgres_connection.database,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'made'",
        )
    )
    assert types == {
        "i16": "smallint", "i64": "bigint", "u32": "bigint", "dec": "numeric",
        "f": "double precision", "s": "text", "cat": "text", "b": "boolean",
        "ts": "timestamp without time zone", "tz": "timestamp with time zone", "d": "date",
        "l": "ARRAY", "u": "uuid", "j": "jsonb",
    }  # fmt: skip
    back = c.read().to_pylist()
    assert back[0]["dec"] == decimal.Decimal("1.25") and back[0]["u"] == str(uuid.UUID(int=5))
    assert back[0]["ts"] == dt.datetime(2026, 1, 1) and back[1]["l"] == []
    assert back[0]["j"] == '{"a": 1}' and back[0]["cat"] == "x"


def test_unwritable_arrow_type_names_the_column(postgres_connection: Any) -> None:
    c = connector_for(_entry(postgres_connection, "nowrite"))
    data = pa.table({"ok": [1], "m": pa.array([{"a": 1}], pa.struct([("a", pa.int64())]))})
    with pytest.raises(ConnectorError, match="column 'm' has Arrow type struct"):
        c.write(data)


def test_overwrite_swaps_in_a_new_table_keeping_its_definition(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    db = postgres_connection.database
    _sql(postgres_server, db, "CREATE TABLE ref (k int PRIMARY KEY, v text NOT NULL)",
         "INSERT INTO ref VALUES (1, 'a'), (2, 'b')")  # fmt: skip
    c = connector_for(_entry(postgres_connection, "ref"))
    c.write(pa.table({"k": [5, 6], "v": ["x", "y"]}), "overwrite")  # int64 -> int4: staged
    assert sorted(c.read().to_pylist(), key=lambda r: r["k"]) == [
        {"k": 5, "v": "x"},
        {"k": 6, "v": "y"},
    ]
    # The primary key came along, and no temporary table is left behind.
    assert _sql(postgres_server, db, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
                "AND conrelid = 'ref'::regclass") == [(1,)]  # fmt: skip
    assert _sql(postgres_server, db, "SELECT count(*) FROM pg_class WHERE relname LIKE "
                "'%huntlab%'") == [(0,)]  # fmt: skip


def test_append_and_upsert(postgres_server: PostgresServer, postgres_connection: Any) -> None:
    db = postgres_connection.database
    _sql(
        postgres_server, db,
        "CREATE TABLE verdicts (family text, country text, clients bigint, seen_by uuid, "
        "meta jsonb, PRIMARY KEY (family, country))",
    )  # fmt: skip
    c = connector_for(_entry(postgres_connection, "verdicts"))
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    c.write(pa.table({"family": ["Emotet"], "country": ["DE"], "clients": [3]}), "append")
    c.write(
        pa.table({"family": ["Emotet", "Qakbot"], "country": ["DE", "BR"], "clients": [9, 4],
                  "seen_by": [u1, u2], "meta": ['{"n": 1}', None]}),
        "merge", keys=["family", "country"],
    )  # fmt: skip
    rows = sorted(c.read().to_pylist(), key=lambda r: r["family"])
    assert rows == [
        {"family": "Emotet", "country": "DE", "clients": 9, "seen_by": u1, "meta": '{"n": 1}'},
        {"family": "Qakbot", "country": "BR", "clients": 4, "seen_by": u2, "meta": None},
    ]
    with pytest.raises(ConnectorError, match="no primary key or unique constraint on"):
        c.write(pa.table({"family": ["x"], "country": ["y"]}), "merge", keys=["family"])
    with pytest.raises(ConnectorError, match="same key more than once"):
        c.write(pa.table({"family": ["a", "a"], "country": ["b", "b"], "clients": [1, 2]}),
                "merge", keys=["family", "country"])  # fmt: skip
    with pytest.raises(InputError, match="needs key columns"):
        c.write(pa.table({"family": ["a"]}), "merge")
    assert c.read(["family"]).num_rows == 2


def test_upsert_into_a_new_table_creates_its_primary_key(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    c = connector_for(_entry(postgres_connection, "fresh"))
    c.write(pa.table({"k": ["a", "b"], "v": [1, 2]}), "merge", keys=["k"])
    c.write(pa.table({"k": ["b", "c"], "v": [20, 30]}), "merge", keys=["k"])
    assert sorted(c.read().to_pylist(), key=lambda r: r["k"]) == [
        {"k": "a", "v": 1}, {"k": "b", "v": 20}, {"k": "c", "v": 30}]  # fmt: skip
    # Rows whose values do not change are not rewritten (same row version afterwards).
    db = postgres_connection.database
    before = dict(_sql(postgres_server, db, "SELECT k, xmin::text FROM fresh"))
    c.write(pa.table({"k": ["a", "b"], "v": [1, 21]}), "merge", keys=["k"])
    after = dict(_sql(postgres_server, db, "SELECT k, xmin::text FROM fresh"))
    assert after["a"] == before["a"] and after["b"] != before["b"]


def test_schema_mismatch_is_one_clear_error(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    _sql(postgres_server, postgres_connection.database, "CREATE TABLE m (k int, day date)",
         "INSERT INTO m VALUES (1, '2026-01-01')")  # fmt: skip
    c = connector_for(_entry(postgres_connection, "m"))
    with pytest.raises(ConnectorError, match="column 'extra' of the data is not in the table"):
        c.write(pa.table({"k": [1], "extra": ["x"]}), "append")
    with pytest.raises(ConnectorError, match="column 'day' is bool in the data but date"):
        c.write(pa.table({"k": [1], "day": [True]}), "overwrite")
    with pytest.raises(ConnectorError, match="does not fit the table"):
        c.write(pa.table({"k": [2], "day": ["not a date"]}), "overwrite")
    assert c.read().to_pylist() == [{"k": 1, "day": dt.date(2026, 1, 1)}]


def test_wrong_password_unreachable_server_missing_table(
    postgres_connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services.postgres import PASSWORD_ENV, free_port

    c = connector_for(_entry(postgres_connection, "nope"))
    with pytest.raises(ConnectorError, match="relation .*nope.* does not exist") as err:
        c.read()
    assert "\n" not in str(err.value) and "create the table" in str(err.value)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(ConnectorError, match="password authentication failed") as err:
        c.read()
    assert "\n" not in str(err.value) and PASSWORD_ENV not in str(err.value)
    gone = postgres_connection.model_copy(update={"port": free_port()})
    with pytest.raises(ConnectorError, match="cannot reach PostgreSQL") as err:
        connector_for(_entry(gone, "t")).read()
    assert err.value.transient and "\n" not in str(err.value)


def _kill_when_blocked(server: PostgresServer, db: str, table: str, mode: str) -> Exception:
    """Run a write that blocks on a lock held by a second session, kill its backend, report."""
    big = pa.table({"k": list(range(10_000)), "v": ["new"] * 10_000})
    c = connector_for(_entry_for(server, db, table))
    failure: list[Exception] = []

    def write() -> None:
        try:
            c.write(big, mode, keys=["k"] if mode == "merge" else None)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    with server.connect(db) as holder:
        holder.autocommit = False
        lock = "ACCESS SHARE" if mode == "overwrite" else "SHARE"
        holder.execute(f"LOCK TABLE {table} IN {lock} MODE")  # the tests' own fixed name
        t = threading.Thread(target=write)
        t.start()
        with server.connect(db) as killer:
            pid = _wait_for_lock_waiter(killer)
            killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        t.join(30)
        holder.rollback()
    assert failure, "the write should have failed"
    return failure[0]


def _entry_for(server: PostgresServer, db: str, table: str) -> Any:
    from huntlab.config import PostgresConnection
    from tests.services.postgres import PASSWORD_ENV

    conn = PostgresConnection(type="postgres", host=server.host, port=server.port, database=db,
                              user=server.user, password_env=PASSWORD_ENV)  # fmt: skip
    return _entry(conn, table)


def _wait_for_lock_waiter(con: Any, timeout_s: float = 20.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = con.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'huntlab' "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("the huntlab write never waited for the lock")


@pytest.mark.parametrize("mode", ["overwrite", "merge", "append"])
def test_connection_killed_mid_write_leaves_the_table_as_it_was(
    postgres_server: PostgresServer, postgres_connection: Any, mode: str
) -> None:
    db = postgres_connection.database
    _sql(postgres_server, db, "CREATE TABLE target (k bigint PRIMARY KEY, v text)",
         "INSERT INTO target SELECT g, 'old' FROM generate_series(1, 100) g")  # fmt: skip
    err = _kill_when_blocked(postgres_server, db, "target", mode)
    assert isinstance(err, ConnectorError) and err.transient
    assert "was closed" in str(err) and "\n" not in str(err)
    assert _sql(postgres_server, db, "SELECT count(*), min(v), max(v) FROM target") == [
        (100, "old", "old")
    ]
    assert _sql(postgres_server, db, "SELECT count(*) FROM pg_class WHERE relname LIKE "
                "'%huntlab%'") == [(0,)]  # fmt: skip


HOSTILE = ['x"; DROP TABLE victim; --', "Robert'); DROP TABLE victim;--", "%s %(a)s {} $1", "ü ß"]


def test_hostile_table_and_column_names(
    postgres_server: PostgresServer, postgres_connection: Any
) -> None:
    db = postgres_connection.database
    _sql(postgres_server, db, "CREATE TABLE victim (a int)")
    for name in HOSTILE:
        cols = {name: [1, 2], name + "_v": ["a", name]}
        c = connector_for(_entry(postgres_connection, name, schema="public"))
        c.write(pa.table(cols), "overwrite")
        c.write(pa.table(cols), "overwrite")  # the swap renames indexes too
        c.write(pa.table({name: [3], name + "_v": ["b"]}), "append")
        got = c.read(columns=[name + "_v"], filters=[Filter(name, ">=", 2)])
        assert sorted(got.column(0).to_pylist()) == sorted([name, "b"])
        keyed = connector_for(_entry(postgres_connection, name + "_k"))
        keyed.write(pa.table(cols), "merge", keys=[name])
        keyed.write(pa.table({name: [2], name + "_v": ["c"]}), "merge", keys=[name])
        assert sorted(keyed.read().column(1).to_pylist()) == ["a", "c"]
    assert _sql(postgres_server, db, "SELECT count(*) FROM victim") == [(0,)]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # PostgreSQL truncates identifiers beyond 63 bytes; "n" is the test's other column.
    name=st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20).filter(
        lambda n: len(n.encode()) <= 60 and n != "n"
    ),
    values=st.lists(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                            max_size=30), min_size=1, max_size=5),
)  # fmt: skip
def test_any_column_name_and_text_round_trip(
    postgres_connection: Any, name: str, values: list[str]
) -> None:
    c = connector_for(_entry(postgres_connection, "prop_" + name[:10]))
    data = pa.table({name: values, "n": list(range(len(values)))})
    c.write(data, "overwrite")
    back = c.read(filters=[Filter("n", "<", len(values))])
    assert sorted(zip(back.column("n").to_pylist(), back.column(name).to_pylist())) == sorted(
        zip(range(len(values)), values)
    )


def test_jdbc_options_for_spark(postgres_connection: Any) -> None:
    c = connector_for(_entry(postgres_connection, "public.t"))
    opts = c.jdbc_options()  # type: ignore[attr-defined]
    assert opts["url"] == (
        f"jdbc:postgresql://{postgres_connection.host}:{postgres_connection.port}/"
        f"{postgres_connection.database}"
    )
    assert opts["dbtable"] == '"public"."t"' and opts["driver"] == "org.postgresql.Driver"
    assert opts["password"] == postgres_connection.password()
