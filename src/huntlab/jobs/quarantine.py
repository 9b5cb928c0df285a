"""Quarantine: malformed lines of external CSV/JSON-lines inputs kept with a reason, per run.

Each engine finds the lines its scanner could not read (DuckDB: CSV rejects tables and a
line-by-line check of JSON lines; Spark: PERMISSIVE mode's corrupt-record column); the runner
appends them to the managed dataset `quarantine` before it commits the job's output.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.malformed import Malformed

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

QUARANTINE = "quarantine"
RAW_CAP = 4096  # characters of a raw line kept

SCHEMA = pa.schema(
    [
        ("run_id", pa.int64()),
        ("engine", pa.string()),
        ("dataset", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("raw", pa.string()),
        ("reason", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)


def collect(engine: Any, ws: Workspace, names: list[str]) -> dict[str, list[Malformed]]:
    """Malformed lines of every external CSV/JSON-lines input of a run, by dataset."""
    out: dict[str, list[Malformed]] = {}
    for name in names:
        entry = ws.store.get_dataset(name)
        if entry.kind != "external" or entry.format not in ("csv", "jsonl"):
            continue
        if engine.name == "spark":
            from huntlab.engines.spark_sources import malformed_lines as spark_malformed

            found = spark_malformed(engine.spark, entry)
        else:
            from huntlab.connectors.base import connector_for

            found = connector_for(entry).malformed_lines(getattr(engine, "con", None), name)
        if found:
            out[name] = found
    return out


def write(ws: Workspace, run_id: int, engine: str, found: dict[str, list[Malformed]]) -> str | None:
    """Append the run's malformed lines to `quarantine` in one commit; its new version."""
    from huntlab.connectors.base import connector_for

    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "run_id": run_id,
            "engine": engine,
            "dataset": name,
            "file": m.file,
            "line": m.line,
            "raw": m.raw[:RAW_CAP],
            "reason": m.reason,
            "quarantined_at": now,
        }
        for name, items in found.items()
        for m in items
    ]
    conn = connector_for(ws.ensure_managed(QUARANTINE))
    version = conn.write(pa.Table.from_pylist(rows, SCHEMA), "append", run_id=run_id)  # type: ignore[call-arg]
    ws.store.touch_dataset(QUARANTINE)
    return version


def messages(found: dict[str, list[Malformed]], written: bool = True) -> list[str]:
    """One line per dataset for the run record and the CLI."""
    where = (
        f"quarantined in `{QUARANTINE}` (see `huntlab datasets show {QUARANTINE}`)"
        if written
        else "found, not quarantined (a run without writing); the first: "
    )
    return [
        f"{len(items):,} malformed rows of {name} {where}"
        + ("" if written else f"{items[0].file}:{items[0].line}: {items[0].reason}")
        for name, items in found.items()
    ]
