"""Upserts into a Cassandra table: concurrent prepared statements, batched per partition."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.cassandra_session import connector_error, quote, translated
from huntlab.connectors.cassandra_types import CqlType, arrow_type, cql_type_for, python_values
from huntlab.errors import ConnectorError, InputError

if TYPE_CHECKING:
    from cassandra.cluster import Session


@dataclass(frozen=True)
class Column:
    """One column of a Cassandra table and its role in the primary key."""

    name: str
    cql: CqlType
    kind: str  # partition_key, clustering, regular, static
    reversed: bool = False

    @property
    def is_key(self) -> bool:
        return self.kind in ("partition_key", "clustering")


@dataclass
class WriteOptions:
    """How rows are written: consistency, TTL, in-flight requests, rows per partition batch."""

    consistency: int
    ttl: int | None = None
    concurrency: int = 128
    batch_rows: int = 50
    decimal_scale: int = 9


def columns_from_arrow(schema: pa.Schema, keys: list[str]) -> list[Column]:
    """Columns of a new table for Arrow data: first key partitions, the other keys cluster."""
    if not keys:
        raise InputError(
            "creating a Cassandra table needs key columns (the first is the partition key)",
            "Add `-- key: col1, col2` to the job header, or create the table yourself",
        )
    missing = [k for k in keys if k not in schema.names]
    if missing:
        raise InputError(f"key columns {missing} are not columns of the data")
    from huntlab.connectors.cassandra_types import parse_cql_type

    cols = []
    for field in schema:
        kind = "regular"
        if field.name in keys:
            kind = "partition_key" if field.name == keys[0] else "clustering"
        cql = parse_cql_type(cql_type_for(field.type, field.name))
        cols.append(Column(field.name, cql, kind))
    order = {k: i for i, k in enumerate(keys)}
    return sorted(cols, key=lambda c: order.get(c.name, len(order)))


def create_table_cql(keyspace: str, table: str, columns: list[Column]) -> str:
    """CREATE TABLE for the columns (identifiers quoted by the driver; no user values inside)."""
    defs = [f"{quote(c.name)} {c.cql}{' static' if c.kind == 'static' else ''}" for c in columns]
    pk = [quote(c.name) for c in columns if c.kind == "partition_key"]
    ck = [c for c in columns if c.kind == "clustering"]
    key = f"(({', '.join(pk)}){''.join(', ' + quote(c.name) for c in ck)})"
    order = ""
    if any(c.reversed for c in ck):
        parts = ", ".join(f"{quote(c.name)} {'DESC' if c.reversed else 'ASC'}" for c in ck)
        order = f" WITH CLUSTERING ORDER BY ({parts})"
    target = f"{quote(keyspace)}.{quote(table)}"
    return f"CREATE TABLE {target} ({', '.join(defs)}, PRIMARY KEY {key}){order}"


def _statement(keyspace: str, table: str, cols: list[Column], ttl: bool) -> tuple[str, bool]:
    """The prepared CQL for the data's columns, and whether it is a counter update."""
    target = f"{quote(keyspace)}.{quote(table)}"
    counters = [c for c in cols if c.cql.name == "counter"]
    if counters:
        keys = [c for c in cols if c.is_key]
        sets = ", ".join(f"{quote(c.name)} = {quote(c.name)} + ?" for c in counters)
        where = " AND ".join(f"{quote(c.name)} = ?" for c in keys)
        return f"UPDATE {target} SET {sets} WHERE {where}", True
    names = ", ".join(quote(c.name) for c in cols)
    marks = ", ".join("?" for _ in cols)
    using = " USING TTL ?" if ttl else ""
    return f"INSERT INTO {target} ({names}) VALUES ({marks}){using}", False


def _bind_order(table_cols: list[Column], data: pa.Table) -> list[Column]:
    """The table's columns present in the data, checked: every key present, nothing unknown."""
    by_name = {c.name: c for c in table_cols}
    unknown = [n for n in data.schema.names if n not in by_name]
    if unknown:
        raise InputError(
            f"columns {unknown} are not in the Cassandra table (it has {list(by_name)})",
            "Rename or drop them in the job, or add them to the table with ALTER TABLE",
        )
    missing = [c.name for c in table_cols if c.is_key and c.name not in data.schema.names]
    if missing:
        raise InputError(f"primary key columns {missing} are missing from the data")
    present = [by_name[n] for n in data.schema.names]
    if any(c.cql.name == "counter" for c in present):
        # counter update binds the counters first, then the key in WHERE order
        return [c for c in present if not c.is_key] + [c for c in table_cols if c.is_key]
    return present


def _values(data: pa.Table, cols: list[Column], opts: WriteOptions, counter: bool) -> list[list]:
    """Python values per column, validated before anything is sent."""
    from cassandra.query import UNSET_VALUE

    out = []
    for c in cols:
        col = data.column(c.name)
        if c.is_key and col.null_count:
            raise InputError(
                f"primary key column {c.name!r} has {col.null_count:,} null value(s)",
                "Filter or fill those rows in the job: Cassandra rows need a full key",
            )
        if counter and not c.is_key and c.cql.name != "counter":
            raise InputError(f"column {c.name!r} of a counter table must be a counter or a key")
        typ = arrow_type(c.cql, c.name, opts.decimal_scale)
        values = python_values(col, c.cql, typ, c.name)
        if col.null_count and not c.is_key:
            # null means "no value": UNSET writes nothing (no tombstone); counters add 0
            fill = 0 if counter else UNSET_VALUE
            values = [fill if v is None else v for v in values]
        out.append(values)
    return out


def upsert(
    session: Session,
    keyspace: str,
    table: str,
    table_cols: list[Column],
    data: pa.Table,
    opts: WriteOptions,
) -> int:
    """Upsert every row (counters: add); returns rows written, or raises naming how many were."""
    if data.num_rows == 0:
        return 0
    cols = _bind_order(table_cols, data)
    cql, counter = _statement(keyspace, table, cols, opts.ttl is not None)
    if counter and opts.ttl is not None:
        raise InputError("counter tables cannot have a TTL", "Drop the ttl option")
    rows = list(zip(*_values(data, cols, opts, counter)))
    if opts.ttl is not None:
        rows = [(*r, opts.ttl) for r in rows]
    with translated(f"prepare a write to {keyspace}.{table}"):
        prepared = session.prepare(cql)
    prepared.consistency_level = opts.consistency
    prepared.is_idempotent = not counter
    statements = _group(prepared, rows, cols, opts, counter)
    return _execute(session, statements, len(rows), f"{keyspace}.{table}", counter, opts)


def _group(prepared: Any, rows: list[tuple], cols: list[Column], opts: WriteOptions, counter: bool):
    """(statement, params, row count) triples: one UNLOGGED batch per partition with many rows."""
    clustered = any(c.kind == "clustering" for c in cols)
    if not clustered or opts.batch_rows <= 1:
        return [(prepared, r, 1) for r in rows]
    from cassandra.query import BatchStatement, BatchType

    pk_at = [i for i, c in enumerate(cols) if c.kind == "partition_key"]
    parts: dict[tuple, list[tuple]] = defaultdict(list)
    for r in rows:
        parts[tuple(r[i] for i in pk_at)].append(r)
    out: list[tuple[Any, Any, int]] = []
    kind = BatchType.COUNTER if counter else BatchType.UNLOGGED
    for part in parts.values():
        if len(part) == 1:
            out.append((prepared, part[0], 1))
            continue
        for i in range(0, len(part), opts.batch_rows):
            chunk = part[i : i + opts.batch_rows]
            batch = BatchStatement(batch_type=kind, consistency_level=opts.consistency)
            for r in chunk:
                batch.add(prepared, r)
            out.append((batch, None, len(chunk)))
    return out


def _execute(session: Session, statements: list, total: int, target: str, counter: bool, opts):
    """Run the statements with at most `concurrency` in flight; stop at the first failure.

    Not the driver's execute_concurrent: when a node dies mid-write it recursed through its
    callbacks here and lost the count of rows written.
    """
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(opts.concurrency)
    written = [0]
    errors: list[BaseException] = []

    def ok(_result: Any, n: int) -> None:
        with lock:
            written[0] += n
        slots.release()

    def failed(exc: BaseException) -> None:
        with lock:
            errors.append(exc)
        slots.release()

    for stmt, params, n in statements:
        if errors:
            break  # the rest is not sent: the caller retries the whole (idempotent) write
        slots.acquire()
        try:
            future = session.execute_async(stmt, params)
        except Exception as exc:  # noqa: BLE001 - e.g. NoHostAvailable raised at once
            failed(exc)
            break
        future.add_callbacks(ok, failed, callback_args=(n,))
    for _ in range(opts.concurrency):  # wait for everything in flight
        slots.acquire()
    if errors:
        err = connector_error(
            errors[0], f"write {total - written[0]:,} of {total:,} rows to {target}"
        )
        hint = (
            "Counter increments are not idempotent: rerunning adds the written rows again"
            if counter
            else "Upserts are idempotent: run the same write again to complete it"
        )
        raise ConnectorError(
            f"{err.message}; {written[0]:,} rows were written", hint, transient=err.transient
        ) from None
    return written[0]
