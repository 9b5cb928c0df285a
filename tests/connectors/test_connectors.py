"""The connector contract, run against every built-in connector; plus format specifics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huntlab.catalog.store import DatasetEntry
from huntlab.connectors.base import Filter, connector_for
from huntlab.errors import ConnectorError, InputError

ROWS = [
    {"family": "Emotet", "hits": 3, "country": "DE"},
    {"family": "Qakbot", "hits": 5, "country": "BR"},
    {"family": "Emotet", "hits": 1, "country": "US"},
]


def _make(kind: str, tmp: Path) -> DatasetEntry:
    table = pa.Table.from_pylist(ROWS)
    if kind == "parquet":
        pq.write_table(table.slice(0, 2), tmp / "a.parquet")
        pq.write_table(table.slice(2), tmp / "b.parquet")
        return DatasetEntry("t", "external", "parquet", str(tmp / "*.parquet"))
    if kind == "csv":
        (tmp / "a.csv").write_text(
            "family,hits,country\n"
            + "".join(f"{r['family']},{r['hits']},{r['country']}\n" for r in ROWS)
        )
        return DatasetEntry("t", "external", "csv", str(tmp / "a.csv"))
    if kind == "jsonl":
        (tmp / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        return DatasetEntry("t", "external", "jsonl", str(tmp / "a.jsonl"))
    entry = DatasetEntry("t", "managed", "delta", str(tmp / "delta"))
    connector_for(entry).write(table, "overwrite")
    return entry


def _make_postgres(request: pytest.FixtureRequest) -> DatasetEntry:
    """The same rows in a table on the real test server (tests/services/postgres.py)."""
    from huntlab.connectors.postgres import postgres_entry

    conn = request.getfixturevalue("postgres_connection")
    entry = postgres_entry("t", "test", conn, table="contract")
    connector_for(entry).write(pa.Table.from_pylist(ROWS), "overwrite")
    return entry


@pytest.fixture(
    params=[
        "parquet",
        "csv",
        "jsonl",
        "delta",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def entry(request: pytest.FixtureRequest, tmp_path: Path) -> DatasetEntry:
    if request.param == "postgres":
        return _make_postgres(request)
    return _make(request.param, tmp_path)


def test_read_all(entry: DatasetEntry) -> None:
    t = connector_for(entry).read()
    got = sorted(t.to_pylist(), key=lambda r: (r["family"], r["hits"]))
    assert got == sorted(ROWS, key=lambda r: (r["family"], r["hits"]))


def test_column_selection_and_filters(entry: DatasetEntry) -> None:
    c = connector_for(entry)
    t = c.read(columns=["family", "hits"], filters=[Filter("hits", ">=", 3)])
    assert t.column_names == ["family", "hits"]
    assert sorted(t.column("hits").to_pylist()) == [3, 5]
    t = c.read(filters=[Filter("country", "in", ["DE", "US"]), Filter("family", "=", "Emotet")])
    assert t.num_rows == 2


def test_schema(entry: DatasetEntry) -> None:
    s = connector_for(entry).schema()
    assert set(s.names) == {"family", "hits", "country"}
    assert pa.types.is_integer(s.field("hits").type)


def test_register_in_duckdb(entry: DatasetEntry) -> None:
    import duckdb

    con = duckdb.connect()
    connector_for(entry).register(con, "t")
    assert con.execute("SELECT sum(hits) FROM t").fetchone()[0] == 9


def test_missing_files_say_so(tmp_path: Path) -> None:
    e = DatasetEntry("t", "external", "parquet", str(tmp_path / "nope" / "*.parquet"))
    with pytest.raises(ConnectorError, match="no file matches"):
        connector_for(e).read()


def test_external_data_is_read_only(tmp_path: Path) -> None:
    e = _make("csv", tmp_path)
    with pytest.raises(ConnectorError, match="read-only"):
        connector_for(e).write(pa.table({"a": [1]}))


def test_malformed_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": 2\nnot json\n{"a": 3}\n')
    c = connector_for(DatasetEntry("b", "external", "jsonl", str(p)))
    assert sorted(c.read().column("a").to_pylist()) == [1, 3]
    assert c.malformed_rows() == 2
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,x\n2,y,extra,cols\nnotanint,z\n4,w\n")
    c = connector_for(
        DatasetEntry(
            "b", "external", "csv", str(p), declared_schema={"a": "BIGINT", "b": "VARCHAR"}
        )
    )
    assert sorted(c.read().column("a").to_pylist()) == [1, 4]
    assert c.malformed_rows() == 2


def test_delta_versions_modes_and_history(tmp_path: Path) -> None:
    c = connector_for(
        DatasetEntry("d", "managed", "delta", str(tmp_path / "d"), partition_by=["day"])
    )
    day = dt.date(2026, 11, 1)
    assert c.write(pa.table({"k": [1, 2], "v": ["a", "b"], "day": [day, day]})) == "0"
    assert c.write(pa.table({"k": [3], "v": ["c"], "day": [day]}), "append") == "1"
    assert (
        c.write(pa.table({"k": [2, 4], "v": ["B", "d"], "day": [day, day]}), "merge", keys=["k"])
        == "2"
    )
    rows = sorted(c.read().to_pylist(), key=lambda r: r["k"])
    assert [(r["k"], r["v"]) for r in rows] == [(1, "a"), (2, "B"), (3, "c"), (4, "d")]
    assert [h["operation"] for h in c.history()] == ["MERGE", "WRITE", "WRITE"]
    assert c.count_rows() == 4
    assert (tmp_path / "d" / "day=2026-11-01").is_dir()
    with pytest.raises(InputError, match="key"):
        c.write(pa.table({"k": [1]}), "merge")


def test_delta_uncommitted_files_are_invisible(tmp_path: Path) -> None:
    """A writer killed before its commit leaves data files but no log entry: readers ignore them."""
    c = connector_for(DatasetEntry("d", "managed", "delta", str(tmp_path / "d")))
    c.write(pa.table({"k": [1, 2]}))
    pq.write_table(pa.table({"k": [99] * 10}), tmp_path / "d" / "part-orphan.parquet")
    assert sorted(c.read().column("k").to_pylist()) == [1, 2]
    assert c.version() == "0"
