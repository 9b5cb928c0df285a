"""`huntlab datasets ...`: the data repository from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from huntlab.cli.main import console, datasets_app, workspace


def _parse_schema(text: str | None) -> dict[str, str] | None:
    from huntlab.errors import InputError

    if not text:
        return None
    out = {}
    for item in text.split(","):
        col, sep, typ = item.partition(":")
        if not sep or not col.strip() or not typ.strip():
            raise InputError(f"bad --schema item {item!r}", "Write it as col:TYPE,col2:TYPE")
        out[col.strip()] = typ.strip().upper()
    return out


@datasets_app.command("list")
def list_() -> None:
    """List every dataset in the repository."""
    from rich.table import Table

    from huntlab.connectors.base import connector_for
    from huntlab.errors import HuntlabError

    t = Table(header_style="bold cyan")
    for col in ("name", "kind", "format", "version", "location", "description"):
        t.add_column(col)
    for d in workspace().store.list_datasets():
        try:
            ver = connector_for(d).version()
        except HuntlabError:
            ver = None
        t.add_row(d.name, d.kind, d.format, ver or "", d.location, d.description)
    console().print(t)


@datasets_app.command()
def show(name: Annotated[str, typer.Argument(help="Dataset name.")]) -> None:
    """Show a dataset's definition, schema and version."""
    from rich.table import Table

    from huntlab.connectors.base import connector_for

    d = workspace().store.get_dataset(name)
    conn = connector_for(d)
    c = console()
    c.print(f"[bold]{d.name}[/] ({d.kind}, {d.format}) at {d.location}")
    if d.description:
        c.print(d.description)
    if d.partition_by:
        c.print(f"partitioned by: {', '.join(d.partition_by)}")
    ver, rows = conn.version(), conn.count_rows()
    if ver is not None:
        c.print(f"version: {ver}")
    if rows is not None:
        c.print(f"rows: {rows:,}")
    if d.format in ("jsonl", "csv"):
        bad = conn.malformed_rows()  # type: ignore[attr-defined]
        colour = "yellow" if bad else "green"
        c.print(f"[{colour}]malformed rows skipped: {bad:,}[/]")
    t = Table("column", "type", header_style="bold cyan")
    for f in conn.schema():
        t.add_row(f.name, str(f.type))
    c.print(t)


@datasets_app.command()
def add(
    name: Annotated[str, typer.Argument(help="Dataset name (letters, digits, _).")],
    location: Annotated[str | None, typer.Argument(help="File path or glob.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv or parquet.")] = None,
    schema: Annotated[str | None, typer.Option(help="Declared schema: col:TYPE,...")] = None,
    managed: Annotated[
        bool, typer.Option(help="A managed (Delta) dataset stored by huntlab.")
    ] = False,
    partition_by: Annotated[str | None, typer.Option(help="Managed: partition columns.")] = None,
    description: Annotated[str, typer.Option(help="What the data is.")] = "",
    replace: Annotated[bool, typer.Option(help="Redefine an existing dataset.")] = False,
    postgres: Annotated[
        str | None, typer.Option("--postgres", help="PostgreSQL table: [schema.]table.")
    ] = None,
    query: Annotated[str | None, typer.Option(help="PostgreSQL query (read-only dataset).")] = None,
    connection: Annotated[
        str | None, typer.Option(help="Named connection from huntlab.toml [connections.NAME].")
    ] = None,
    pg_schema: Annotated[
        str | None, typer.Option(help="PostgreSQL schema, when the table name has a dot.")
    ] = None,
    cassandra: Annotated[
        str | None, typer.Option(help="A Cassandra table: KEYSPACE.TABLE (or TABLE).")
    ] = None,
    ttl: Annotated[int | None, typer.Option(help="Cassandra: TTL in seconds of writes.")] = None,
    consistency: Annotated[
        str | None, typer.Option(help="Cassandra: consistency level, e.g. LOCAL_QUORUM.")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="Cassandra: tuning KEY=VALUE.")
    ] = None,
) -> None:
    """Add an external dataset over files, PostgreSQL or Cassandra, or a managed one."""
    from pathlib import Path

    from huntlab.catalog.store import DatasetEntry
    from huntlab.connectors.base import connector_for
    from huntlab.connectors.files import infer_format
    from huntlab.errors import InputError
    from huntlab.workspace import check_name

    ws = workspace()
    check_name(name)
    parts = [p.strip() for p in (partition_by or "").split(",") if p.strip()]
    if postgres is not None or query is not None:
        entry = _postgres_entry(ws, name, postgres, query, connection, pg_schema, description)
    elif cassandra:
        from huntlab.connectors.cassandra_catalog import cassandra_entry, parse_options

        opts = {"ttl": ttl, "consistency": consistency, **parse_options(option or [])}
        entry, exists = cassandra_entry(
            ws, name, cassandra, connection, description=description, options=opts
        )
        if not exists:
            console().print(
                f"[yellow]table {entry.location} does not exist yet[/]: the first write creates "
                "it (the job's first key is the partition key, the others cluster)"
            )
    elif managed:
        entry = DatasetEntry(
            name,
            "managed",
            "delta",
            str(ws.managed_location(name)),
            partition_by=parts,
            description=description,
        )
    else:
        if not location:
            raise InputError(
                "an external dataset needs a file path or glob",
                "Pass it after the name, or use --managed",
            )
        fmt = fmt or infer_format(location)
        if fmt not in ("jsonl", "csv", "parquet"):
            raise InputError(f"unknown format '{fmt}'", "Use jsonl, csv or parquet")
        loc = location if Path(location).is_absolute() else str(Path.cwd() / location)
        entry = DatasetEntry(
            name,
            "external",
            fmt,
            loc,
            declared_schema=_parse_schema(schema),
            description=description,
        )
        connector_for(entry).schema()  # fail now, not at the first job, if unreadable
    ws.store.add_dataset(entry, replace=replace)
    console().print(f"[green]added[/] {entry.kind} dataset '{name}' ({entry.format})")


def _postgres_entry(
    ws: Any,
    name: str,
    table: str | None,
    query: str | None,
    connection: str | None,
    schema: str | None,
    description: str,
) -> Any:
    """A PostgreSQL dataset on a named connection; its schema is read now to fail early."""
    from huntlab.config import PostgresConnection
    from huntlab.connectors.base import connector_for
    from huntlab.connectors.postgres import postgres_entry
    from huntlab.errors import InputError

    if table is not None and query is not None:
        raise InputError("pass --postgres TABLE or --query SQL, not both")
    if not connection:
        raise InputError(
            "a PostgreSQL dataset needs --connection NAME",
            'Define [connections.NAME] with type = "postgres" in huntlab.toml',
        )
    conn = ws.config.connection(connection)
    if not isinstance(conn, PostgresConnection):
        raise InputError(f"connection '{connection}' is of type {conn.type}, not postgres")
    entry = postgres_entry(
        name, connection, conn, table=table, schema=schema, query=query, description=description
    )
    pg = connector_for(entry)
    if pg.exists():  # type: ignore[attr-defined]
        pg.schema()  # unreadable types fail now, not at the first job
    else:
        console().print(f"table {entry.location} does not exist yet: the first write creates it")
    return entry


@datasets_app.command()
def preview(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    rows: Annotated[int, typer.Option("-n", "--rows", help="How many rows.")] = 10,
) -> None:
    """Print the first rows of a dataset."""
    from huntlab.cli.render import arrow_table

    eng = workspace().engine("duckdb")
    try:
        eng.register([name])
        table = eng.con.table(name).limit(rows).to_arrow_table()
    finally:
        eng.close()
    console().print(arrow_table(table, rows, title=name))


@datasets_app.command()
def history(name: Annotated[str, typer.Argument(help="Dataset name.")]) -> None:
    """Versions of a managed dataset, and the runs that wrote them."""
    from rich.table import Table

    from huntlab.connectors.base import connector_for

    conn = connector_for(workspace().store.get_dataset(name))
    t = Table(header_style="bold cyan")
    for col in ("version", "timestamp", "operation", "rows written", "run"):
        t.add_column(col)
    for h in conn.history():
        t.add_row(
            str(h["version"]),
            h["timestamp"],
            str(h["operation"]),
            str(h["rows_written"] or ""),
            str(h["huntlab_run"] or ""),
        )
    if not t.row_count:
        console().print(f"dataset '{name}' has no versions (external data is not versioned)")
        return
    console().print(t)


@datasets_app.command()
def load(
    name: Annotated[str, typer.Argument(help="Managed dataset to write.")],
    location: Annotated[str, typer.Argument(help="File path or glob to load.")],
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv or parquet.")] = None,
    mode: Annotated[str, typer.Option(help="overwrite or append.")] = "append",
    partition_by: Annotated[str | None, typer.Option(help="Partition columns.")] = None,
) -> None:
    """Load files into a managed dataset in one atomic commit."""
    from huntlab.catalog.store import DatasetEntry
    from huntlab.connectors.base import connector_for
    from huntlab.connectors.files import infer_format
    from huntlab.jobs.normalize import normalize_table

    ws = workspace()
    src = DatasetEntry("_load", "external", fmt or infer_format(location), location)
    table = normalize_table(connector_for(src).read())
    parts = [p.strip() for p in (partition_by or "").split(",") if p.strip()]
    conn = connector_for(ws.ensure_managed(name, parts))
    version = conn.write(table, mode)  # type: ignore[arg-type]
    console().print(f"[green]loaded {table.num_rows:,} rows[/] into '{name}' version {version}")


@datasets_app.command()
def remove(name: Annotated[str, typer.Argument(help="Dataset name.")]) -> None:
    """Remove a dataset from the catalog (managed data stays on disk)."""
    workspace().store.remove_dataset(name)
    console().print(f"removed '{name}' from the catalog")
