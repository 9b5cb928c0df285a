"""Cassandra tables as datasets: parallel token-range reads with key pushdown, upserts, counters."""

from __future__ import annotations

import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.base import Connector, Filter, WriteMode, apply_filters, register_connector
from huntlab.connectors.cassandra_session import (
    check_name,
    consistency_level,
    quote,
    session_for,
    translated,
)
from huntlab.connectors.cassandra_types import arrow_type, parse_cql_type, to_arrow_array, writer
from huntlab.connectors.cassandra_write import (
    Column,
    WriteOptions,
    columns_from_arrow,
    create_table_cql,
    upsert,
)
from huntlab.errors import ConfigError, ConnectorError, InputError

if TYPE_CHECKING:
    from cassandra.cluster import Session

    from huntlab.catalog.store import DatasetEntry
    from huntlab.config import CassandraConnection
    from huntlab.workspace import Workspace

MIN_TOKEN, MAX_TOKEN = -(2**63), 2**63 - 1  # Murmur3Partitioner
MAX_PARTITIONS = 100_000  # cap on partitions one read expands IN lists into
_RANGE_OPS = ("<", "<=", ">", ">=")


@dataclass
class ReadPlan:
    """The CQL of a read, one parameter tuple per sub-query, and filters left for Arrow."""

    cql: str
    params: list[tuple[Any, ...]]
    kind: str  # "partitions" (key pushdown) or "token_ranges" (full scan in splits)
    residual: list[Filter] = field(default_factory=list)


@register_connector("cassandra")
class CassandraConnector(Connector):
    """A Cassandra table: reads as Arrow in parallel, writes as upserts (or counter increments)."""

    supports_write = True
    supports_merge = True

    def __init__(
        self,
        entry: DatasetEntry,
        connection: CassandraConnection | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        super().__init__(entry)
        self._connection = connection
        self._workspace = workspace
        ks, dot, table = entry.location.partition(".")
        if not dot:
            raise InputError(f"Cassandra location {entry.location!r} is not KEYSPACE.TABLE")
        self.keyspace, self.table = check_name(ks, "keyspace"), check_name(table, "table")

    # -- configuration -----------------------------------------------------------------------
    def option(self, name: str, default: Any = None) -> Any:
        value = self.entry.options.get(name)
        return default if value is None else value

    def workspace(self) -> Workspace:
        """The workspace whose catalog holds this dataset (for connections and overwrites)."""
        if self._workspace is None:
            from huntlab.workspace import Workspace

            root = self.option("workspace")
            known = root and (Path(root) / "huntlab.toml").is_file()
            self._workspace = Workspace(Path(root)) if known else Workspace.find()
        return self._workspace

    def connection(self) -> CassandraConnection:
        if self._connection is None:
            from huntlab.config import CassandraConnection

            name = self.option("connection")
            if not name:
                raise ConfigError(f"dataset '{self.entry.name}' names no Cassandra connection")
            conn = self.workspace().config.connection(name)
            if not isinstance(conn, CassandraConnection):
                raise ConfigError(f"connection '{name}' is {conn.type}, not cassandra")
            self._connection = conn
        return self._connection

    def session(self) -> Session:
        self._consistency()  # a misspelt level fails before any connection is made
        return session_for(self.connection(), float(self.option("timeout", 30)))

    def _consistency(self, override: str | None = None) -> int:
        return consistency_level(
            override or self.option("consistency") or self.connection().consistency
        )

    # -- metadata ----------------------------------------------------------------------------
    def columns(self, required: bool = True) -> list[Column] | None:
        """The table's columns in key order, from the driver's schema metadata."""
        cluster = self.session().cluster
        meta = cluster.metadata
        table_known = self.table in getattr(meta.keyspaces.get(self.keyspace), "tables", {})
        if not table_known:  # created elsewhere a moment ago? ask the cluster, not the cache
            with translated(f"read the schema of {self.keyspace}"):
                cluster.refresh_schema_metadata()
        ks = meta.keyspaces.get(self.keyspace)
        if ks is None:
            raise ConnectorError(
                f"Cassandra keyspace '{self.keyspace}' does not exist",
                f"Known keyspaces: {', '.join(sorted(meta.keyspaces))}; create it or fix the name",
            )
        table = ks.tables.get(self.table)
        if table is None:
            if not required:
                return None
            raise ConnectorError(
                f"Cassandra table '{self.keyspace}.{self.table}' does not exist",
                f"Tables in {self.keyspace}: {', '.join(sorted(ks.tables)) or '(none)'}",
            )
        pk = [c.name for c in table.partition_key]
        ck = [c.name for c in table.clustering_key]
        out = []
        for name, col in table.columns.items():
            kind = "partition_key" if name in pk else "clustering" if name in ck else "regular"
            if col.is_static:
                kind = "static"
            out.append(Column(name, parse_cql_type(col.cql_type), kind, bool(col.is_reversed)))
        order = {n: i for i, n in enumerate(pk + ck)}
        return sorted(out, key=lambda c: order.get(c.name, len(order)))

    def _selected(self, names: list[str] | None) -> list[Column]:
        cols = self.columns()
        assert cols is not None
        if names is None:
            return cols
        by_name = {c.name: c for c in cols}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise InputError(
                f"columns {unknown} are not in {self.keyspace}.{self.table}",
                f"It has: {', '.join(by_name)}",
            )
        return [by_name[n] for n in names]

    def schema(self) -> pa.Schema:
        scale = int(self.option("decimal_scale", 9))
        cols = self.columns()
        assert cols is not None
        return pa.schema([(c.name, arrow_type(c.cql, c.name, scale)) for c in cols])

    def version(self) -> str | None:
        """The physical table behind the dataset once an overwrite has switched it."""
        return self.table if self.option("generation") else None

    # -- reading -----------------------------------------------------------------------------
    def plan(
        self, columns: list[str] | None = None, filters: list[Filter] | None = None
    ) -> ReadPlan:
        """How a read runs: single partitions when the partition key is fixed, else token ranges."""
        table_cols = self.columns()
        assert table_cols is not None
        selected = self._selected(columns)
        names = ", ".join(quote(c.name) for c in selected)
        target = f"{quote(self.keyspace)}.{quote(self.table)}"
        by_col: dict[str, list[Filter]] = {}
        for f in filters or []:
            by_col.setdefault(f.column, []).append(f)
        pk = [c for c in table_cols if c.kind == "partition_key"]
        used = [_fixing_filter(by_col.get(c.name, [])) for c in pk]
        if all(f is not None for f in used):
            return self._partition_plan(names, target, pk, used, table_cols, by_col, filters or [])
        token = f"token({', '.join(quote(c.name) for c in pk)})"
        cql = f"SELECT {names} FROM {target} WHERE {token} >= ? AND {token} <= ?"
        splits = int(self.option("splits", 16))
        return ReadPlan(cql, token_ranges(splits), "token_ranges", list(filters or []))

    def _partition_plan(self, names, target, pk, used, table_cols, by_col, filters) -> ReadPlan:
        """Single-partition queries (IN lists expanded) plus the clustering filters CQL takes."""
        where = [f"{quote(c.name)} = ?" for c in pk]
        fixed = [_values_of(f, c) for f, c in zip(used, pk)]
        pushed: list[Filter] = list(used)
        extra: list[Any] = []
        for c in (c for c in table_cols if c.kind == "clustering"):
            fs = by_col.get(c.name, [])
            conv = writer(c.cql, c.name) or (lambda v: v)
            eq = [f for f in fs if f.op == "="]
            if eq:
                where.append(f"{quote(c.name)} = ?")
                extra.append(conv(eq[0].value))
                pushed.append(eq[0])
                continue
            rng = [f for f in fs if f.op in _RANGE_OPS]
            ins = [f for f in fs if f.op == "in"]
            if rng:
                where += [f"{quote(c.name)} {f.op} ?" for f in rng]
                extra += [conv(f.value) for f in rng]
                pushed += rng
            elif ins:
                where.append(f"{quote(c.name)} IN ?")
                extra.append([conv(v) for v in ins[0].value])
                pushed.append(ins[0])
            break  # Cassandra restricts a clustering column only after equal ones before it
        combos = list(itertools.islice(itertools.product(*fixed), MAX_PARTITIONS + 1))
        if len(combos) > MAX_PARTITIONS:
            raise InputError(f"a read may name at most {MAX_PARTITIONS:,} partitions")
        cql = f"SELECT {names} FROM {target} WHERE {' AND '.join(where)}"
        residual = [f for f in filters if not any(f is p for p in pushed)]
        return ReadPlan(cql, [(*c, *extra) for c in combos], "partitions", residual)

    def read(
        self, columns: list[str] | None = None, filters: list[Filter] | None = None
    ) -> pa.Table:
        """Rows of the selected columns matching every filter, as one Arrow table."""
        need = list(columns) if columns is not None else None
        if need is not None:  # residual filters need their columns; dropped again below
            need += [f.column for f in filters or [] if f.column not in need]
        plan = self.plan(need, filters)
        table = apply_filters(self._fetch(plan, need, plan.params), plan.residual)
        return table.select(columns) if columns is not None else table

    def splits(self) -> int:
        """How many token ranges a full read is split into (one task each on Spark)."""
        return len(self.plan().params)

    def read_split(self, index: int) -> pa.Table:
        """Every column of one token range of a full read (for parallel tasks on Spark)."""
        plan = self.plan()
        return self._fetch(plan, None, [plan.params[index]])

    def _fetch(
        self, plan: ReadPlan, need: list[str] | None, params: list[tuple[Any, ...]]
    ) -> pa.Table:
        cols = self._selected(need)
        scale = int(self.option("decimal_scale", 9))
        types = [arrow_type(c.cql, c.name, scale) for c in cols]
        schema = pa.schema([(c.name, t) for c, t in zip(cols, types)])
        session = self.session()
        with translated(f"read {self.keyspace}.{self.table}"):
            prepared = session.prepare(plan.cql)
        prepared.consistency_level = self._consistency()
        prepared.fetch_size = int(self.option("page_size", 5000))

        def fetch(p: tuple[Any, ...]) -> pa.Table:
            with translated(f"read {self.keyspace}.{self.table}"):
                rows = list(session.execute(prepared, p))
            values = list(zip(*rows)) if rows else [() for _ in cols]
            arrays = [
                to_arrow_array(list(v), c.cql, t, c.name) for v, c, t in zip(values, cols, types)
            ]
            return pa.Table.from_arrays(arrays, schema=schema)

        workers = max(1, min(len(params), int(self.option("read_threads", 8))))
        with ThreadPoolExecutor(workers, thread_name_prefix="huntlab-cassandra") as pool:
            parts = list(pool.map(fetch, params))
        return pa.concat_tables(parts) if parts else schema.empty_table()

    # -- writing -----------------------------------------------------------------------------
    def write(
        self,
        data: pa.Table,
        mode: WriteMode = "merge",
        keys: list[str] | None = None,
        run_id: int | None = None,
        *,
        ttl: int | None = None,
        consistency: str | None = None,
    ) -> str | None:
        """Upsert the rows (append and merge alike); overwrite loads a new table and switches."""
        ttl = ttl if ttl is not None else self.option("ttl")
        opts = WriteOptions(
            consistency=self._consistency(consistency),
            ttl=int(ttl) if ttl is not None else None,
            concurrency=int(self.option("concurrency", 128)),
            batch_rows=int(self.option("batch_rows", 50)),
            decimal_scale=int(self.option("decimal_scale", 9)),
        )
        if opts.ttl is not None and opts.ttl <= 0:
            raise InputError(f"ttl must be a positive number of seconds, not {opts.ttl}")
        if mode == "overwrite":
            return self._overwrite(data, keys or [], opts)
        cols = self.columns(required=False)
        if cols is None:
            cols = self._create(self.table, columns_from_arrow(data.schema, keys or []))
        upsert(self.session(), self.keyspace, self.table, cols, data, opts)
        return self.version()

    def _create(self, table: str, cols: list[Column]) -> list[Column]:
        with translated(f"create table {self.keyspace}.{table}"):
            self.session().execute(create_table_cql(self.keyspace, table, cols))
        return cols

    def _overwrite(self, data: pa.Table, keys: list[str], opts: WriteOptions) -> str | None:
        """Load into a fresh table, then point the dataset at it: readers never see it half full."""
        cols = self.columns(required=False) or columns_from_arrow(data.schema, keys)
        base = self.option("base_table", self.table)
        generation = int(self.option("generation", 0)) + 1
        new = f"{base[:40]}_v{generation}"
        self._create(new, cols)
        try:
            upsert(self.session(), self.keyspace, new, cols, data, opts)
        except BaseException:
            self._drop(new)
            raise
        previous = self.option("previous")
        self._switch(new, generation, base)
        if previous and _made_by_huntlab(previous, base):
            self._drop(previous)  # keep one generation back; never drop the user's own table
        return self.version()

    def _switch(self, table: str, generation: int, base: str) -> None:
        options = {
            **self.entry.options,
            "generation": generation,
            "base_table": base,
            "previous": self.table,
        }
        entry = replace(self.entry, location=f"{self.keyspace}.{table}", options=options)
        store = self.workspace().store
        if store.has_dataset(entry.name):
            store.add_dataset(entry, replace=True)
        self.entry, self.table = entry, table

    def _drop(self, table: str) -> None:
        with translated(f"drop table {self.keyspace}.{table}"):
            self.session().execute(f"DROP TABLE IF EXISTS {quote(self.keyspace)}.{quote(table)}")


def _made_by_huntlab(table: str, base: str) -> bool:
    return re.fullmatch(re.escape(base[:40]) + r"_v\d+", table) is not None


def _fixing_filter(filters: list[Filter]) -> Filter | None:
    """The = (else IN) filter that fixes a partition key column, if any."""
    return next((f for f in filters if f.op == "="), None) or next(
        (f for f in filters if f.op == "in"), None
    )


def _values_of(f: Filter, col: Column) -> list[Any]:
    """The bound values of a partition key filter (an IN list expands to many partitions)."""
    conv = writer(col.cql, col.name) or (lambda v: v)
    return [conv(f.value)] if f.op == "=" else [conv(v) for v in f.value]


def token_ranges(splits: int) -> list[tuple[int, int]]:
    """Cover the Murmur3 token ring with `splits` closed, contiguous ranges."""
    splits = max(1, splits)
    step = (MAX_TOKEN - MIN_TOKEN) // splits
    bounds = [MIN_TOKEN + i * step for i in range(splits)] + [MAX_TOKEN + 1]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(splits)]
