"""Event-time windows: assign events to tumbling or sliding windows, merge partial aggregates.

Times are integer microseconds since the epoch (Arrow's timestamp[us] storage), so window
arithmetic is exact. An event belongs to the window/slide windows whose start lies in
(ts - window, ts]; one whose earliest window already closed (end <= watermark) is late.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from huntlab.events import TS_TYPE

US = 1_000_000


def event_us(table: pa.Table, column: str = "ts") -> np.ndarray:
    """Event times of a table as int64 microseconds."""
    return pc.cast(table.column(column), pa.int64()).to_numpy(zero_copy_only=False)


def late_mask(ts_us: np.ndarray, slide_us: int, watermark_us: int | None) -> np.ndarray:
    """Events whose earliest window has already closed (ends at or before the watermark)."""
    if watermark_us is None:
        return np.zeros(len(ts_us), dtype=bool)
    first_end = (ts_us // slide_us) * slide_us + slide_us
    return first_end <= watermark_us


def assign(table: pa.Table, window_us: int, slide_us: int, watermark_us: int | None) -> pa.Table:
    """One row per (event, open window), with a `window_start` timestamp column."""
    ts = event_us(table)
    base = (ts // slide_us) * slide_us
    parts = []
    for k in range(window_us // slide_us):
        start = base - k * slide_us
        keep = None if watermark_us is None else (start + window_us > watermark_us)
        if keep is not None and keep.all():  # filtering copies every column, even all-true
            keep = None
        part = table if keep is None else table.filter(pa.array(keep))
        starts = start if keep is None else start[keep]
        if part.num_rows:
            col = pa.array(starts, pa.int64()).cast(TS_TYPE)
            parts.append(part.append_column("window_start", col))
    if not parts:
        return table.append_column("window_start", pa.array([], TS_TYPE)).slice(0, 0)
    return pa.concat_tables(parts)


def merge(open_: pa.Table | None, partial: pa.Table, group: list[str]) -> pa.Table:
    """Add a micro-batch's partial aggregates into the open windows (sums per group)."""
    if open_ is None or open_.num_rows == 0:
        both = partial
    elif partial.num_rows == 0:
        return open_
    else:
        both = pa.concat_tables([open_, partial.select(open_.schema.names).cast(open_.schema)])
    values = [c for c in both.schema.names if c not in group]
    agg = both.group_by(group, use_threads=False).aggregate([(v, "sum") for v in values])
    agg = agg.rename_columns(
        [n.removesuffix("_sum") if n not in group else n for n in agg.schema.names]
    )
    return agg.select(both.schema.names).cast(both.schema)


def split_closed(
    open_: pa.Table, window_us: int, watermark_us: int | None
) -> tuple[pa.Table, pa.Table]:
    """(closed, still open): windows whose end is at or before the watermark are final."""
    if watermark_us is None:
        return open_.slice(0, 0), open_
    starts = event_us(open_, "window_start")
    closed = starts + window_us <= watermark_us
    return open_.filter(pa.array(closed)), open_.filter(pa.array(~closed))
