"""Writing Arrow into a PostgreSQL table in one transaction: overwrite, append, upsert by key.

Rows travel by ADBC's binary COPY. Binary COPY needs each column's exact type, so data whose
Arrow types match the table goes straight in; otherwise it lands in a temporary staging table and
the server casts it on `INSERT ... SELECT` (the upsert always goes through staging).
"""

from __future__ import annotations

import secrets
from typing import Any

import pyarrow as pa

from huntlab.connectors import pgtypes
from huntlab.errors import ConnectorError, InputError

MAX_IDENT = 63  # PostgreSQL truncates longer identifiers
NO_EQUALITY = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}


class TableWriter:
    """Writes into schema.table over an open ADBC connection; the caller closes it."""

    def __init__(self, con: Any, schema: str, table: str, where: str) -> None:
        from psycopg import sql

        self.sql = sql
        self.con, self.cur = con, con.cursor()
        self.schema, self.table, self.where = schema, table, where
        self.ident = sql.Identifier(schema, table)

    def run(self, query: Any, params: list[Any] | None = None) -> None:
        self.cur.execute(query.as_string(), parameters=params)

    def write(self, data: pa.Table, mode: str, keys: list[str] | None) -> None:
        """One transaction: committed whole, or rolled back whole (the table stays as it was)."""
        try:
            columns = self.columns()
            if mode == "merge":
                self.upsert(data, keys or [], columns)
            elif columns is None:
                self.create(self.ident, data, keys=None)
                self.load(self.table, data, None)
            elif mode == "append":
                self.check(data, columns)
                self.load(self.table, data, columns)
            else:
                self.check(data, columns)
                self.overwrite(data, columns)
            self.con.commit()
        except BaseException:
            try:
                self.con.rollback()
            except Exception:  # noqa: BLE001 - a dropped connection rolls back on the server
                pass
            raise

    # -- the table as it is -----------------------------------------------------------------
    def columns(self) -> dict[str, pgtypes.PgColumn] | None:
        """The table's columns in order, or None when it does not exist."""
        self.run(
            self.sql.SQL(
                "SELECT a.attname, t.typname, n.nspname, t.typcategory, a.attnotnull "
                "FROM pg_catalog.pg_attribute a "
                "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
                "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum"
            ),
            [self.ident.as_string()],
        )
        rows = self.cur.fetchall()
        if not rows:
            self.run(self.sql.SQL("SELECT to_regclass($1) IS NOT NULL"), [self.ident.as_string()])
            return {} if self.cur.fetchone()[0] else None
        return {r[0]: pgtypes.PgColumn(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows}

    def check(self, data: pa.Table, columns: dict[str, pgtypes.PgColumn]) -> None:
        """Every column of the data must exist in the table with a type it can take."""
        for f in data.schema:
            col = columns.get(f.name)
            if col is None:
                raise ConnectorError(
                    f"cannot write to {self.where}: column '{f.name}' of the data is not in the "
                    f"table (it has {', '.join(columns) or 'no columns'})",
                    "Rename the column in the job, or ALTER TABLE to add it",
                )
            if not pgtypes.compatible(f.type, col):
                raise ConnectorError(
                    f"cannot write to {self.where}: column '{f.name}' is {f.type} in the data "
                    f"but {col.typname} in the table",
                    "Cast the column in the job to match the table",
                )

    def unique_keys(self) -> list[set[str]]:
        """Column sets of the table's primary key and unique constraints."""
        self.run(
            self.sql.SQL(
                "SELECT array_agg(a.attname::text) FROM pg_catalog.pg_constraint c "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid "
                "AND a.attnum = ANY(c.conkey) WHERE c.conrelid = to_regclass($1) "
                "AND c.contype IN ('p', 'u') GROUP BY c.oid"
            ),
            [self.ident.as_string()],
        )
        return [set(r[0]) for r in self.cur.fetchall()]

    # -- the modes --------------------------------------------------------------------------
    def overwrite(self, data: pa.Table, columns: dict[str, pgtypes.PgColumn]) -> None:
        """Build a new table like the old one, fill it, then swap it in (same transaction)."""
        sql = self.sql
        new_name = _temp_name(self.table, "new")
        new = sql.Identifier(self.schema, new_name)
        self.run(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(new, self.ident))
        self.load(new_name, data, columns)
        self.run(sql.SQL("DROP TABLE {}").format(self.ident))
        self.run(sql.SQL("ALTER TABLE {} RENAME TO {}").format(new, sql.Identifier(self.table)))
        self.rename_indexes(new_name)

    def rename_indexes(self, new_name: str) -> None:
        """Give the swapped-in table's indexes (and their constraints) the old table's names."""
        sql = self.sql
        self.run(
            sql.SQL(
                "SELECT c.relname FROM pg_catalog.pg_index i "
                "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass($1)"
            ),
            [self.ident.as_string()],
        )
        for (index,) in self.cur.fetchall():
            if index.startswith(new_name):
                wanted = (self.table + index[len(new_name) :]).encode()[:MAX_IDENT]
                self.run(
                    sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                        sql.Identifier(self.schema, index),
                        sql.Identifier(wanted.decode(errors="ignore")),
                    )
                )

    def upsert(
        self, data: pa.Table, keys: list[str], columns: dict[str, pgtypes.PgColumn] | None
    ) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE from a staging table loaded by COPY."""
        if not keys:
            raise InputError(
                f"an upsert into {self.where} needs key columns",
                "Add `-- key: col1, col2` to the job header",
            )
        missing = [k for k in keys if k not in data.schema.names]
        if missing:
            raise InputError(f"upsert keys {missing} are not columns of the data")
        if columns is None:
            self.create(self.ident, data, keys=keys)
            self.load(self.table, data, None)
            return
        self.check(data, columns)
        if set(keys) not in self.unique_keys():
            raise ConnectorError(
                f"cannot upsert into {self.where}: the table has no primary key or unique "
                f"constraint on ({', '.join(keys)})",
                "Add one (ALTER TABLE ... ADD PRIMARY KEY) or use the table's key columns",
            )
        sql = self.sql
        stage = self.stage(data)
        names = data.schema.names
        rest = [n for n in names if n not in keys]
        self.run(
            sql.SQL(
                "INSERT INTO {} AS huntlab_t ({}) SELECT {} FROM {} ON CONFLICT ({}) {}"
            ).format(
                self.ident,
                sql.SQL(", ").join(map(sql.Identifier, names)),
                self.casts(data, columns),
                stage,
                sql.SQL(", ").join(map(sql.Identifier, keys)),
                self.on_conflict(rest, columns),
            )
        )
        self.run(sql.SQL("DROP TABLE {}").format(stage))

    def on_conflict(self, rest: list[str], columns: dict[str, pgtypes.PgColumn]) -> Any:
        """Update the non-key columns, skipping rows that would not change (no dead tuples)."""
        sql = self.sql
        if not rest:
            return sql.SQL("DO NOTHING")
        new = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in rest)
        action = sql.SQL("DO UPDATE SET ({}) = ROW({})").format(
            sql.SQL(", ").join(map(sql.Identifier, rest)), new
        )
        if any(columns[n].typname.lstrip("_") in NO_EQUALITY for n in rest):
            return action
        old = sql.SQL(", ").join(sql.Identifier("huntlab_t", n) for n in rest)
        return action + sql.SQL(" WHERE ROW({}) IS DISTINCT FROM ROW({})").format(old, new)

    # -- moving rows ------------------------------------------------------------------------
    def create(self, ident: Any, data: pa.Table, keys: list[str] | None) -> None:
        sql = self.sql
        defs = [
            sql.SQL("{} {}").format(
                sql.Identifier(f.name), sql.SQL(pgtypes.ddl_type(f.name, f.type))
            )
            for f in data.schema
        ]
        if keys:
            defs.append(
                sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, keys)))
            )
        self.run(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(defs)))

    def load(self, table: str, data: pa.Table, columns: dict[str, pgtypes.PgColumn] | None) -> None:
        """COPY straight in when every type matches exactly, else stage and cast on the server."""
        if columns is None or all(
            pgtypes.native_typname(f.type) == columns[f.name].typname for f in data.schema
        ):
            self.cur.adbc_ingest(table, data, mode="append", db_schema_name=self.schema)
            return
        sql = self.sql
        ident = sql.Identifier(self.schema, table)
        stage = self.stage(data)
        self.run(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                ident,
                sql.SQL(", ").join(map(sql.Identifier, data.schema.names)),
                self.casts(data, columns),
                stage,
            )
        )
        self.run(sql.SQL("DROP TABLE {}").format(stage))

    def stage(self, data: pa.Table) -> Any:
        """A temporary table holding the data (dropped at the latest when the session ends)."""
        name = _temp_name(self.table, "stage")
        self.cur.adbc_ingest(name, data, mode="create", temporary=True)
        return self.sql.Identifier(name)

    def casts(self, data: pa.Table, columns: dict[str, pgtypes.PgColumn]) -> Any:
        """Each staged column cast to the target column's type (named from the catalog)."""
        sql = self.sql
        return sql.SQL(", ").join(
            sql.SQL("CAST({} AS {})").format(
                sql.Identifier(n),
                sql.Identifier(columns[n].schema, columns[n].typname),
            )
            for n in data.schema.names
        )


def _temp_name(table: str, what: str) -> str:
    suffix = f"__huntlab_{what}_{secrets.token_hex(4)}"
    head = table.encode()[: MAX_IDENT - len(suffix)].decode(errors="ignore")
    return head + suffix
