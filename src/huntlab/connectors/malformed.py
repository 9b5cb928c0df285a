"""Malformed lines of CSV and JSON-lines files: where they are, what they held, and why.

Shared by both engines so that a line rejected on DuckDB and on Spark carries the same reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Malformed:
    """One line a scanner rejected: where it is, what it held, and why."""

    file: str
    line: int | None
    raw: str
    reason: str


def type_name(t: pa.DataType) -> str:
    """The SQL name of an Arrow type, as DuckDB's messages spell it."""
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    return "VARCHAR"


def _castable(value: Any, kind: str) -> bool:
    """Whether a CSV text or JSON value converts to a column of this SQL type."""
    if value is None or kind == "VARCHAR":
        return True
    if isinstance(value, bool):
        return kind == "BOOLEAN"
    text = str(value).strip()
    try:
        if kind == "BIGINT":
            return isinstance(value, int) or (isinstance(value, str) and int(text) is not None)
        if kind == "DOUBLE":
            return float(text) is not None
        if kind == "BOOLEAN":
            return text.lower() in ("true", "false", "t", "f", "1", "0")
        if kind == "DATE":
            return dt.date.fromisoformat(text) is not None
        if kind == "TIMESTAMP":
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) is not None
    except ValueError:
        return False
    return True


def _cast_reason(value: Any, kind: str, column: str) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"cannot cast '{shown[:80]}' to {kind} in column {column}"


def reason_for(raw: str, fmt: str, schema: pa.Schema) -> str | None:
    """Why a line cannot be read into rows of `schema`, or None if it can."""
    kinds = {f.name: type_name(f.type) for f in schema}
    if fmt == "csv":
        fields = next(csv.reader([raw]), [])
        if len(fields) != len(kinds):
            return f"CSV: expected {len(kinds)} columns, found {len(fields)}"
        pairs = list(zip(kinds, [None if v == "" else v for v in fields]))
    else:
        try:
            obj = json.loads(raw)
        except ValueError:
            return "invalid JSON"
        if not isinstance(obj, dict):
            return "invalid JSON: not an object"
        pairs = [(name, obj.get(name)) for name in kinds]
        if all(v is None for _, v in pairs):
            return "no column of the dataset has a value"
    for name, value in pairs:
        if isinstance(value, dict | list) and kinds[name] != "VARCHAR":
            return _cast_reason(value, kinds[name], name)
        if not _castable(value, kinds[name]):
            return _cast_reason(value, kinds[name], name)
    return None


def numbered_lines(path: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every line of a file, gzip or not."""
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        for n, line in enumerate(fh, start=1):
            yield n, line.rstrip("\r\n")


def locate(path: str, raws: list[str]) -> dict[str, list[int]]:
    """Line numbers of each raw text in a file (Spark's corrupt records carry no position)."""
    wanted = set(raws)
    found: dict[str, list[int]] = {}
    for n, text in numbered_lines(path):
        if text in wanted:
            found.setdefault(text, []).append(n)
    return found
