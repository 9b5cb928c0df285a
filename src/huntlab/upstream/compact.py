"""Compaction: the durable log -> managed datasets per event type, exactly once.

Every Delta commit carries the log position it covers (`huntlab.upstream_position`), written in
the same atomic commit as the rows. A rerun after a crash at any point starts from the last
checkpoint and skips, per dataset, every frame that dataset already holds: nothing is lost and
nothing is written twice. Once every dataset holds a run's frames, the checkpoint file moves
forward (written atomically) and segments wholly before it are retired to `compacted/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from huntlab.events import EVENT_TYPES
from huntlab.upstream.log import START, Frame, Position, SegmentLog

if TYPE_CHECKING:
    from huntlab.connectors.delta import DeltaConnector
    from huntlab.workspace import Workspace

POSITION_KEY = "huntlab.upstream_position"
CHECKPOINT = "compaction.checkpoint"
QUARANTINE = "quarantine"
CHUNK_ROWS = 500_000  # rows gathered before one commit per dataset (bounds memory)


@dataclass
class CompactResult:
    """What one compaction moved."""

    segments: int = 0
    events: int = 0
    quarantined: int = 0
    per_dataset: dict[str, int] = field(default_factory=dict)
    position: str = ""


def dataset_names(prefix: str) -> dict[str, str]:
    """Event type (or 'quarantine') -> managed dataset name."""
    return {t: f"{prefix}{t}" for t in (*EVENT_TYPES, QUARANTINE)}


def read_checkpoint(log: SegmentLog) -> Position:
    path = log.dir / CHECKPOINT
    if not path.exists():
        return START
    return Position.parse(json.loads(path.read_text())["position"])


def _write_checkpoint(log: SegmentLog, pos: Position) -> None:
    """Atomic: a temporary file, fsynced, renamed over the old one."""
    tmp = log.dir / (CHECKPOINT + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"position": str(pos)}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, log.dir / CHECKPOINT)


class _Sink:
    """One managed dataset being filled, with the log position it already holds."""

    def __init__(self, ws: Workspace, name: str, partition_by: list[str]) -> None:
        from huntlab.connectors.base import connector_for

        self.name = name
        self.connector: DeltaConnector = connector_for(ws.ensure_managed(name, partition_by))  # type: ignore[assignment]
        self.holds = Position.parse(self.connector.commit_value(POSITION_KEY))
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.upto: Position | None = None
        self.written = 0

    def add(self, frame: Frame, rows: pa.Table) -> None:
        if frame.end <= self.holds:  # already committed by an earlier (interrupted) run
            return
        if rows.num_rows:
            self.pending.append(rows)
            self.pending_rows += rows.num_rows
        self.upto = frame.end

    def flush(self) -> None:
        if not self.pending or self.upto is None:
            return
        table = pa.concat_tables(self.pending, promote_options="permissive")
        self.connector.write(table, mode="append", metadata={POSITION_KEY: str(self.upto)})
        self.holds, self.written = self.upto, self.written + table.num_rows
        self.pending, self.pending_rows = [], 0


def _split_events(table: pa.Table) -> dict[str, pa.Table]:
    """An events frame -> rows per event type."""
    out = {}
    types = table.column("event_type")
    for t in pc.unique(types).to_pylist():
        out[t] = table.filter(pc.equal(types, t))
    return out


def compact(ws: Workspace, log: SegmentLog, *, prefix: str = "upstream_") -> CompactResult:
    """Move every complete frame after the checkpoint into its dataset; safe to rerun."""
    names = dataset_names(prefix)
    sinks: dict[str, _Sink] = {}
    start, end = read_checkpoint(log), log.end()
    res = CompactResult(position=str(start))
    pending = 0

    def sink(kind: str) -> _Sink:
        if kind not in sinks:
            parts = [] if kind == QUARANTINE else ["event_date"]
            sinks[kind] = _Sink(ws, names[kind], parts)
        return sinks[kind]

    segments: set[int] = set()
    for frame in log.read_from(start):
        if frame.start >= end:
            break
        segments.add(frame.start.segment)
        if frame.kind == "events":
            for etype, rows in _split_events(frame.table).items():
                sink(etype).add(frame, rows)
        else:
            q = frame.table.append_column(
                "batch_id", pa.array([frame.batch_id.split("#")[0]] * frame.table.num_rows)
            )
            sink(QUARANTINE).add(frame, q)
        pending += frame.table.num_rows
        if pending >= CHUNK_ROWS:
            for s in sinks.values():
                s.flush()
            pending = 0
    for s in sinks.values():
        s.flush()
    if end > start:
        _write_checkpoint(log, end)
        log.retire(end)
    res.segments = len(segments)
    res.position = str(end)
    for s in sinks.values():
        if s.written:
            res.per_dataset[s.name] = s.written
    res.quarantined = res.per_dataset.get(names[QUARANTINE], 0)
    res.events = sum(res.per_dataset.values()) - res.quarantined
    return res


def pending_events(log: SegmentLog) -> int:
    """Rows in the log after the checkpoint (for `huntlab upstream status`)."""
    return sum(f.table.num_rows for f in log.read_from(read_checkpoint(log)))
