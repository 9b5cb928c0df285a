"""Bad input and faults against the real Cassandra node: clear errors, nothing dropped silently."""

from __future__ import annotations

import string

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from huntlab.catalog.store import DatasetEntry
from huntlab.config import CassandraConnection
from huntlab.connectors.base import Filter, connector_for
from huntlab.connectors.cassandra import CassandraConnector
from huntlab.errors import ConfigError, ConnectorError, InputError
from tests.connectors.test_cassandra import _names, dataset, new_table
from tests.services import free_port
from tests.services.cassandra import PASSWORD_ENV

pytestmark = pytest.mark.cassandra


def direct(node, location: str, options: dict | None = None, **conn) -> CassandraConnector:
    """A connector with an explicit connection (no catalog) to the test node."""
    settings_ = {
        "type": "cassandra",
        "port": node.native_port,
        "user": "cassandra",
        "password_env": PASSWORD_ENV,
        "consistency": "ONE",
        **conn,
    }
    entry = DatasetEntry("d", "external", "cassandra", location, options=options or {})
    return CassandraConnector(entry, connection=CassandraConnection.model_validate(settings_))


def test_unknown_keyspace_and_table_are_named(cassandra_ws, cassandra_keyspace) -> None:
    with pytest.raises(ConnectorError, match="keyspace 'nope' does not exist"):
        dataset(cassandra_ws, "nope", "t").read()
    with pytest.raises(ConnectorError, match=f"table '{cassandra_keyspace}.missing' does not"):
        dataset(cassandra_ws, cassandra_keyspace, "missing").schema()


@pytest.mark.parametrize(
    "location", ["ks", "ks.a-b", "ks.x;DROP TABLE y", 'k"s.t', "ks." + "t" * 49, ".t"]
)
def test_invalid_keyspace_or_table_names_are_refused(location: str) -> None:
    with pytest.raises(InputError):
        connector_for(DatasetEntry("d", "external", "cassandra", location))


def test_wrong_types_and_keys_are_refused_before_writing(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "k int, n int, u uuid, ip inet", "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    bad = [
        (pa.table({"k": [1], "n": ["seven"]}), "'n' is int in Cassandra but the data has string"),
        (pa.table({"k": [1], "n": [2**40]}), "'n' is int"),
        (pa.table({"k": [1], "u": ["not-a-uuid"]}), "'u': 'not-a-uuid' is not a UUID"),
        (pa.table({"k": [1], "ip": ["300.1.1.1"]}), "not an IPv4 or IPv6 address"),
        (pa.table({"k": pa.array([1, None])}), "primary key column 'k' has 1 null"),
        (pa.table({"n": [1]}), r"primary key columns \['k'\] are missing"),
        (pa.table({"k": [1], "zz": [1]}), r"columns \['zz'\] are not in the Cassandra table"),
    ]
    for data, message in bad:
        with pytest.raises(InputError, match=message):
            conn.write(data)
    assert conn.read().num_rows == 0  # nothing half-written


def test_unmappable_types_are_named(cassandra_ws, cassandra_node, cassandra_keyspace) -> None:
    table = new_table(
        cassandra_node, cassandra_keyspace, "k int, pair frozen<tuple<int, text>>, ok text", "k"
    )
    cassandra_node.query(f"INSERT INTO {cassandra_keyspace}.{table} (k, ok) VALUES (1, 'y')")
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    with pytest.raises(ConnectorError, match="column 'pair' has CQL type frozen<tuple<int, text>>"):
        conn.read()
    assert conn.read(["k", "ok"]).to_pylist() == [{"k": 1, "ok": "y"}]


def test_unreachable_node_is_a_clear_transient_error(cassandra_node, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "cassandra")
    conn = direct(cassandra_node, "ks.t", port=free_port())
    with pytest.raises(ConnectorError, match="cannot connect to Cassandra at 127.0.0.1") as info:
        conn.read()
    assert info.value.transient


def test_wrong_credentials(cassandra_node, cassandra_keyspace, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong password")
    with pytest.raises(ConnectorError, match="authentication failed"):
        direct(cassandra_node, f"{cassandra_keyspace}.t").read()
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        direct(cassandra_node, f"{cassandra_keyspace}.t").read()


def test_unknown_consistency_level(cassandra_node, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "cassandra")
    with pytest.raises(ConfigError, match="unknown Cassandra consistency level 'SOME'"):
        direct(cassandra_node, "ks.t", consistency="SOME").read()


# Column names from outside: quotes, spaces, reserved words, capitals, unicode.
column_names = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " _\"'-;.()é"),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() == s and s)
hostile = st.lists(column_names, min_size=2, max_size=4, unique_by=str.lower)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=hostile)
@example(names=[".", "0"])
@example(names=["select", 'A b"c', "it's; DROP TABLE x", "Key"])
def test_hostile_column_names_round_trip(cassandra_ws, cassandra_keyspace, names) -> None:
    conn = dataset(cassandra_ws, cassandra_keyspace, f"h{next(_names)}")
    data = pa.table({n: [f"{n}-{i}" for i in range(3)] for n in names})
    conn.write(data, keys=[names[0]])
    back = conn.read()
    assert sorted(back.column_names) == sorted(names)
    # sorted in Python: Arrow's sort_by parses names such as "." as field paths
    assert sorted(back.to_pylist(), key=lambda r: r[names[0]]) == data.to_pylist()


@pytest.fixture(scope="module")
def values_table(cassandra_node, cassandra_keyspace) -> str:
    return new_table(
        cassandra_node,
        cassandra_keyspace,
        "run int, id bigint, s text, f double, b blob, l list<int>",
        "(run), id",
    )


_runs = iter(range(10**6))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.text(max_size=30),
            st.floats(allow_nan=False),
            st.binary(max_size=20),
            st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda r: r[0],
    )
)
def test_values_from_outside_round_trip(
    cassandra_ws, cassandra_keyspace, values_table, rows
) -> None:
    conn = dataset(cassandra_ws, cassandra_keyspace, values_table)
    run = next(_runs)  # each example writes its own partition and reads it back by key
    ids, texts, floats, blobs, lists = map(list, zip(*rows))
    data = pa.table(
        {
            "run": pa.array([run] * len(ids), pa.int32()),
            "id": pa.array(ids, pa.int64()),
            "s": texts,
            "f": floats,
            "b": pa.array(blobs, pa.binary()),
            "l": pa.array(lists, pa.list_(pa.int32())),
        }
    )
    conn.write(data)
    back = conn.read(filters=[Filter("run", "=", run)]).to_pylist()
    want = sorted(data.to_pylist(), key=lambda r: r["id"])
    for r in want:
        r["l"] = r["l"] or None  # an empty collection is no value in Cassandra
    assert back == want  # clustering order is by id


def test_node_killed_mid_write_reports_what_was_written_and_a_retry_completes(
    tmp_path, monkeypatch
) -> None:
    """A second node (the session's stays up) is killed during a write, then restarted."""
    import threading
    import time

    from huntlab.connectors.cassandra_session import close_all
    from tests.services.cassandra_node import CassandraNode

    node = CassandraNode.create(tmp_path / "victim")
    # Durable acknowledgements: with Cassandra's default periodic commit log a crashed single
    # replica loses up to commitlog_sync_period of acknowledged writes (seen here: 83 of 2,474).
    node.commitlog_sync = "batch"
    node.start()
    try:
        node.query(
            "CREATE KEYSPACE k WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        node.query("CREATE TABLE k.t (id bigint PRIMARY KEY, v text)")
        monkeypatch.setenv(PASSWORD_ENV, "cassandra")
        conn = direct(node, "k.t", {"timeout": 5})
        total = 6_000
        data = pa.table({"id": list(range(total)), "v": ["x" * 20] * total})
        outcome: dict[str, BaseException] = {}

        def write() -> None:
            try:
                conn.write(data)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                outcome["error"] = exc

        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill once some rows are in
            if node.query("SELECT count(*) FROM k.t")[0][0] > 300:
                break
            time.sleep(0.2)
        node.kill()
        writer.join(120)
        err = outcome.get("error")
        assert isinstance(err, ConnectorError), err
        assert "rows were written" in str(err) and "run the same write again" in str(err)
        written = int(str(err).split(" rows were written")[0].split("; ")[-1].replace(",", ""))
        assert 0 < written < total

        close_all()
        node.start()  # same folder: the commit log is replayed
        (count,) = node.query("SELECT count(*) FROM k.t")[0]
        assert written <= count < total  # every acknowledged row survived the kill
        direct(node, "k.t").write(data)  # upserts are idempotent: the retry completes it
        assert node.query("SELECT count(*) FROM k.t")[0][0] == total
    finally:
        close_all()
        node.kill()


def test_missing_driver_names_the_extra(monkeypatch) -> None:
    import sys

    from huntlab.connectors.cassandra_session import driver
    from huntlab.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "cassandra", None)
    with pytest.raises(MissingDependency, match=r"pip install 'huntlab\[cassandra\]'"):
        driver()


@given(splits=st.integers(1, 512))
def test_token_ranges_cover_the_ring_once(splits: int) -> None:
    from huntlab.connectors.cassandra import MAX_TOKEN, MIN_TOKEN, token_ranges

    ranges = token_ranges(splits)
    assert len(ranges) == splits
    assert ranges[0][0] == MIN_TOKEN and ranges[-1][1] == MAX_TOKEN
    assert all(a <= b for a, b in ranges)
    assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(splits - 1))


@given(
    st.recursive(
        st.sampled_from(["int", "text", "bigint", "date", "uuid", "blob", "decimal"]),
        lambda inner: st.one_of(
            inner.map(lambda t: f"list<{t}>"),
            inner.map(lambda t: f"frozen<set<{t}>>"),
            st.tuples(inner, inner).map(lambda kv: f"map<{kv[0]}, {kv[1]}>"),
        ),
        max_leaves=5,
    )
)
def test_cql_type_text_parses_back_to_itself(text: str) -> None:
    from huntlab.connectors.cassandra_types import arrow_type, parse_cql_type

    parsed = parse_cql_type(text)
    assert str(parsed) == text
    assert arrow_type(parsed, "c") is not None


def test_request_timeout_is_a_clear_transient_error(
    cassandra_ws, cassandra_node, cassandra_keyspace
) -> None:
    table = new_table(cassandra_node, cassandra_keyspace, "k int, v text", "k")
    conn = dataset(cassandra_ws, cassandra_keyspace, table)
    conn.write(pa.table({"k": list(range(3000)), "v": ["x" * 100] * 3000}))
    slow = dataset(cassandra_ws, cassandra_keyspace, table, name="slow", timeout=0.0002)
    with pytest.raises(ConnectorError, match="OperationTimedOut") as info:
        slow.read()
    assert info.value.transient and "retry" in str(info.value)


def test_tuning_options_are_typed_and_checked() -> None:
    from huntlab.connectors.cassandra_catalog import parse_options

    assert parse_options(["splits=8", "timeout=2.5"]) == {"splits": 8, "timeout": 2.5}
    for bad in ("splits", "splits=many", "splits=0", "drop=1", "ttl=5"):
        with pytest.raises(InputError):
            parse_options([bad])
