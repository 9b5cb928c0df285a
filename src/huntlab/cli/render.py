"""Show Arrow tables and records in the terminal with Rich."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa


def fmt_value(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e15 else f"{v:.4e}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")  # every huntlab timestamp is UTC
    return str(v)


def arrow_table(table: pa.Table, limit: int = 50, title: str | None = None) -> Any:
    """A Rich table of the first `limit` rows."""
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold cyan")
    for f in table.schema:
        numeric = (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_decimal(f.type)
        )
        t.add_column(f.name, justify="right" if numeric else "left", overflow="fold")
    for row in table.slice(0, limit).to_pylist():
        t.add_row(*(fmt_value(v) for v in row.values()))
    if table.num_rows > limit:
        t.caption = f"{limit} of {table.num_rows:,} rows"
    else:
        t.caption = f"{table.num_rows:,} row(s)"
    return t


def write_table(table: pa.Table, path: str) -> None:
    """Write a result to CSV, JSON lines or Parquet, chosen by the file extension."""
    from huntlab.errors import InputError

    lower = path.lower()
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif lower.endswith(".csv"):
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    elif lower.endswith((".json", ".jsonl", ".ndjson")):
        import json

        with open(path, "w", encoding="utf-8") as fh:
            for batch in table.to_batches():
                fh.writelines(json.dumps(row, default=str) + "\n" for row in batch.to_pylist())
    else:
        raise InputError(f"cannot tell the output format of {path}", "Use .csv, .jsonl or .parquet")
