"""PostgreSQL tables and queries as datasets: Arrow reads and writes over ADBC's binary COPY.

The catalog entry keeps the connection's name and its non-secret settings (host, port, database,
user, where the password comes from); the password is read at connect time, never stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors import pgtypes
from huntlab.connectors.base import Connector, Filter, WriteMode, register_connector
from huntlab.errors import ConnectorError, InputError, MissingDependency

if TYPE_CHECKING:
    import duckdb

    from huntlab.catalog.store import DatasetEntry
    from huntlab.config import PostgresConnection

CONNECT_TIMEOUT_S = 10


def _adbc() -> Any:
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError:
        raise MissingDependency("adbc-driver-postgresql", "postgres") from None
    return dbapi


def _sql() -> Any:
    try:
        from psycopg import sql
    except ImportError:
        raise MissingDependency("psycopg", "postgres") from None
    return sql


def postgres_entry(
    name: str,
    connection_name: str,
    connection: PostgresConnection,
    *,
    table: str | None = None,
    schema: str | None = None,
    query: str | None = None,
    description: str = "",
) -> DatasetEntry:
    """A catalog entry for a table (schema.table) or a query on a named connection."""
    from huntlab.catalog.store import DatasetEntry

    if (table is None) == (query is None):
        raise InputError("a PostgreSQL dataset needs a table or a query, not both")
    settings = connection.model_dump(exclude_none=True)
    options: dict[str, Any] = {"connection": connection_name, "settings": settings}
    if table is not None:
        if schema is None and "." in table:
            schema, table = table.split(".", 1)
        options.update(schema=schema or "public", table=table)
        where = f"{options['schema']}.{table}"
    else:
        options["query"] = (query or "").strip().rstrip(";").strip()  # it becomes a subquery
        where = "(query)"
    location = f"postgres://{connection_name}/{where}"
    return DatasetEntry(name, "external", "postgres", location, options, description=description)


@register_connector("postgres")
class PostgresConnector(Connector):
    """A PostgreSQL table (read, overwrite, append, upsert) or a query (read only)."""

    supports_write = True
    supports_merge = True

    def __init__(self, entry: DatasetEntry) -> None:
        super().__init__(entry)
        from huntlab.config import PostgresConnection

        opts = entry.options or {}
        try:
            self.settings = PostgresConnection.model_validate(opts["settings"])
        except Exception as exc:
            raise ConnectorError(
                f"dataset '{entry.name}': its PostgreSQL connection settings are missing or "
                f"invalid ({exc.__class__.__name__})",
                "Redefine it with `huntlab datasets add NAME --postgres TABLE --connection C "
                "--replace`",
            ) from exc
        self.schema_name: str | None = opts.get("schema")
        self.table_name: str | None = opts.get("table")
        self.query: str | None = opts.get("query")

    # -- connecting -------------------------------------------------------------------------
    def conninfo(self) -> str:
        """A libpq connection string with the password resolved now (quoted by psycopg)."""
        from psycopg.conninfo import make_conninfo

        s = self.settings
        params: dict[str, Any] = {
            "host": s.host, "port": s.port, "dbname": s.database,
            "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "huntlab", **s.options,
        }  # fmt: skip
        if s.user:
            params["user"] = s.user
        password = s.password()
        if password is not None:
            params["password"] = password
        return make_conninfo(**params)

    @contextmanager
    def connect(self, action: str) -> Iterator[Any]:
        """An ADBC connection (one transaction, not autocommit); errors become one line."""
        dbapi = _adbc()
        with self.errors(action):
            con = dbapi.connect(self.conninfo())
        try:
            with self.errors(action):
                yield con
        finally:
            try:
                con.close()
            except Exception:  # noqa: BLE001 - a dead connection cannot close cleanly
                pass

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn driver errors into a ConnectorError naming the dataset, the server and a fix."""
        import adbc_driver_manager as adm

        try:
            yield
        except adm.Error as exc:
            raise describe_error(exc, self.entry.name, action, self.settings) from exc

    # -- naming -----------------------------------------------------------------------------
    def relation(self) -> Any:
        """The table as a quoted identifier, or the query as a parenthesised subquery."""
        sql = _sql()
        if self.table_name is not None:
            return sql.Identifier(self.schema_name or "public", self.table_name)
        # The query is the dataset's own definition (the user's SQL on the user's server).
        return sql.SQL("({}) AS huntlab_q").format(sql.SQL(self.query or ""))

    def exists(self) -> bool:
        """Whether the table exists (a query dataset always does); fails if unreachable."""
        if self.table_name is None:
            return True
        with self.connect("look up") as con:
            cur = con.cursor()
            cur.execute(
                "SELECT to_regclass($1) IS NOT NULL", parameters=[self.relation().as_string()]
            )
            return bool(cur.fetchone()[0])

    def _where(self) -> str:
        return f"dataset '{self.entry.name}' ({self.entry.location})"

    # -- reading ----------------------------------------------------------------------------
    def schema(self) -> pa.Schema:
        return self.read(limit=0).schema

    def read(
        self,
        columns: list[str] | None = None,
        filters: list[Filter] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        sql = _sql()
        with self.connect("read") as con:
            cur = con.cursor()
            types = self._raw_types(cur)
            selected = self._selected(types, columns)
            select = sql.SQL(", ").join(_projection(n, types[n]) for n in selected)
            where, params = _where_clause(filters or [], types)
            q = sql.SQL("SELECT {} FROM {}{}").format(select, self.relation(), where)
            if limit is not None:
                q += sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
            cur.execute(q.as_string(), parameters=params or None)
            return pgtypes.normalize_read(cur.fetch_arrow_table())

    def _raw_types(self, cur: Any) -> dict[str, str]:
        """Every column's PostgreSQL typname, in order (from a LIMIT 0 probe)."""
        sql = _sql()
        cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(self.relation()).as_string())
        return {
            f.name: (f.metadata or {}).get(b"POSTGRESQL:type", b"?").decode()
            for f in cur.fetch_arrow_table().schema
        }

    def _selected(self, types: dict[str, str], columns: list[str] | None) -> list[str]:
        """The columns to read, each known and of a type huntlab maps (else one clear error)."""
        for c in columns or []:
            if c not in types:
                raise InputError(
                    f"{self._where()} has no column '{c}'", f"Known: {', '.join(types)}"
                )
        selected = list(columns) if columns else list(types)
        for name in selected:
            if not pgtypes.readable(types[name]):
                raise pgtypes.unmappable(name, types[name], self._where())
        return selected

    def register(self, con: duckdb.DuckDBPyConnection, view: str) -> None:
        con.register(view, self.read())

    # -- writing ----------------------------------------------------------------------------
    def write(
        self,
        data: pa.Table,
        mode: WriteMode = "overwrite",
        keys: list[str] | None = None,
        run_id: int | None = None,
    ) -> str | None:
        """Overwrite (new table swapped in), append, or upsert by key; one transaction each."""
        from huntlab.connectors.pgwrite import TableWriter

        if self.table_name is None:
            raise ConnectorError(
                f"{self._where()} is a query and cannot be written",
                "Define a dataset over a table (--postgres TABLE) as the job's output",
            )
        if mode not in ("overwrite", "append", "merge"):
            raise InputError(f"unknown write mode '{mode}'", "Use overwrite, append or merge")
        data = pgtypes.prepare_write(data)
        with self.connect(f"{mode} into") as con:
            TableWriter(con, self.schema_name or "public", self.table_name, self._where()).write(
                data, mode, keys
            )
        return None

    # -- Spark (JDBC) -----------------------------------------------------------------------
    def jdbc_options(self) -> dict[str, str]:
        """Options for spark.read.format("jdbc") on the same named connection."""
        from urllib.parse import quote

        s = self.settings
        url = f"jdbc:postgresql://{s.host}:{s.port}/{quote(s.database, safe='')}"
        extra = "&".join(f"{quote(k)}={quote(v)}" for k, v in s.options.items())
        opts = {"url": f"{url}?{extra}" if extra else url, "driver": "org.postgresql.Driver"}
        if self.table_name is not None:
            opts["dbtable"] = self.relation().as_string()
        else:
            opts["query"] = self.query or ""
        if s.user:
            opts["user"] = s.user
        password = s.password()
        if password is not None:
            opts["password"] = password
        return opts


_INTEGER_TYPES = ("int2", "int4", "int8")


def jdbc_partitioning(conn: PostgresConnector, partitions: int) -> dict[str, str]:
    """Spark JDBC options that split a table's read by ranges of an integer column (the first
    integer column of the primary key, else the first integer column), {} when there is none."""
    if conn.table_name is None or partitions < 2:
        return {}
    sql = _sql()
    with conn.connect("plan a partitioned read of") as con:
        cur = con.cursor()
        cur.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
            parameters=[conn.relation().as_string()],
        )
        keys = [r[0] for r in cur.fetchall()]
        types = conn._raw_types(cur)
        ints = [c for c in keys if types.get(c) in _INTEGER_TYPES]
        ints += [c for c, t in types.items() if t in _INTEGER_TYPES and c not in ints]
        if not ints:
            return {}
        col = ints[0]
        cur.execute(
            sql.SQL("SELECT min({0}), max({0}) FROM {1}")
            .format(sql.Identifier(col), conn.relation())
            .as_string()
        )
        low, high = cur.fetchone()
    if low is None or high is None or low == high:
        return {}
    return {
        "partitionColumn": sql.Identifier(col).as_string(),
        "lowerBound": str(low),
        "upperBound": str(high),
        "numPartitions": str(partitions),
    }


def _projection(name: str, typname: str) -> Any:
    """A selected column; uuid and json arrays are cast to text so both engines see strings."""
    sql = _sql()
    ident = sql.Identifier(name)
    if typname in pgtypes.AS_TEXT:
        cast = sql.Identifier("pg_catalog", pgtypes.AS_TEXT[typname])
        return sql.SQL("CAST({} AS {}) AS {}").format(ident, cast, ident)
    return ident


_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _where_clause(filters: list[Filter], types: dict[str, str]) -> tuple[Any, list[Any]]:
    """WHERE with bound values ($1, $2, ...): each sent as text, cast to the column's own type."""
    sql = _sql()
    parts, params = [], []

    def bound(value: Any, typname: str) -> Any:
        params.append(_as_text(value))
        cast = sql.Identifier("pg_catalog", typname)
        return sql.SQL("CAST(CAST(${} AS text) AS {})").format(sql.SQL(str(len(params))), cast)

    for f in filters:
        if f.column not in types:
            raise InputError(f"filter on unknown column '{f.column}'", f"Known: {', '.join(types)}")
        col, typname = sql.Identifier(f.column), types[f.column]
        if f.op == "in":
            values = list(f.value)
            if not values:
                parts.append(sql.SQL("FALSE"))
                continue
            items = sql.SQL(", ").join(bound(v, typname) for v in values)
            parts.append(sql.SQL("{} IN ({})").format(col, items))
        elif f.op in _OPS:
            op = sql.SQL(_OPS[f.op])
            parts.append(sql.SQL("{} {} {}").format(col, op, bound(f.value, typname)))
        else:
            raise InputError(f"unsupported filter operator {f.op!r}", "Use =, !=, <, <=, >, >=, in")
    if not parts:
        return sql.SQL(""), []
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def describe_error(exc: Exception, dataset: str, action: str, s: PostgresConnection) -> Exception:
    """One line: what failed, on which server, and what to do."""
    text = str(exc)
    state = getattr(exc, "sqlstate", None) or ""
    m = re.search(r"(?:ERROR|FATAL):\s+(.*)", text)
    detail = (m.group(1) if m else text.splitlines()[0] if text else repr(exc)).strip()
    server = f"{s.user or ''}@{s.host}:{s.port}/{s.database}"
    what = f"cannot {action} PostgreSQL dataset '{dataset}' on {server}: {detail}"
    hint = "Check the dataset definition and the server"
    transient = False
    if "password authentication failed" in text or state == "28P01" or "no password" in text:
        hint = "Check the user and the password (password_env / password_file of the connection)"
    elif "Connection refused" in text or "could not translate host" in text or "timeout" in text:
        what = f"cannot reach PostgreSQL at {s.host}:{s.port} to {action} dataset '{dataset}'"
        hint = "Is the server running? Check host and port of the connection in huntlab.toml"
        transient = True
    elif state == "42P01" or state == "3F000":
        hint = "Check the table name (schema.table), or create the table"
    elif state in ("57P01", "57P02", "57P03", "08006", "08003") or "terminat" in text:
        what = f"the connection to {server} was closed while trying to {action} '{dataset}'"
        hint = "The transaction was rolled back and the table is as it was; retry"
        transient = True
    elif state == "23505":
        hint = "Rows with these keys are already in the table; write with mode merge to upsert"
    elif state == "21000":
        hint = "The data has the same key more than once; deduplicate it before the upsert"
    elif state.startswith(("22", "23", "42")):
        hint = "The data does not fit the table; compare the data's columns with the table's"
    return ConnectorError(what, hint, transient=transient)
