"""Catalog entries for Cassandra tables: `huntlab datasets add --cassandra`, checked live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huntlab.connectors.cassandra import CassandraConnector
from huntlab.errors import ConfigError, InputError

if TYPE_CHECKING:
    from huntlab.catalog.store import DatasetEntry
    from huntlab.workspace import Workspace

# Tuning options a dataset may set (`datasets add --option KEY=VALUE`), with their types.
TUNING = {
    "splits": int,
    "read_threads": int,
    "page_size": int,
    "concurrency": int,
    "batch_rows": int,
    "decimal_scale": int,
    "timeout": float,
}


def parse_options(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE tuning options, typed and checked against TUNING."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in TUNING:
            raise InputError(
                f"bad Cassandra option {item!r}",
                f"Write KEY=VALUE with KEY one of: {', '.join(TUNING)}",
            )
        try:
            out[key] = TUNING[key](value.strip())
        except ValueError:
            raise InputError(f"option {key} needs a number, not {value!r}") from None
        if out[key] <= 0:
            raise InputError(f"option {key} must be positive, not {value!r}")
    return out


def cassandra_entry(
    ws: Workspace,
    name: str,
    target: str,
    connection: str | None,
    *,
    description: str = "",
    options: dict[str, Any] | None = None,
) -> tuple[DatasetEntry, bool]:
    """A catalog entry for KEYSPACE.TABLE (or TABLE in the connection's keyspace), checked live.

    Returns the entry and whether the table exists yet (a job's first write creates it).
    """
    from huntlab.catalog.store import DatasetEntry
    from huntlab.config import CassandraConnection

    names = [n for n, c in ws.config.connections.items() if isinstance(c, CassandraConnection)]
    if connection is None:
        if len(names) != 1:
            raise ConfigError(
                "name the Cassandra connection with --connection "
                f"(cassandra connections in huntlab.toml: {', '.join(names) or 'none'})"
            )
        connection = names[0]
    conn = ws.config.connection(connection)
    if not isinstance(conn, CassandraConnection):
        raise ConfigError(f"connection '{connection}' is {conn.type}, not cassandra")
    ks, dot, table = target.rpartition(".")
    ks = ks if dot else conn.keyspace or ""
    if not ks:
        raise InputError(
            f"no keyspace for Cassandra table {target!r}",
            "Write KEYSPACE.TABLE, or set keyspace in the connection",
        )
    opts = {"connection": connection, "workspace": str(ws.root), **(options or {})}
    opts = {k: v for k, v in opts.items() if v is not None}
    entry = DatasetEntry(name, "external", "cassandra", f"{ks}.{table}", options=opts)
    entry.description = description
    exists = CassandraConnector(entry, workspace=ws).columns(required=False) is not None
    return entry, exists
