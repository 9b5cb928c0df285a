"""Crash share of events per product version over sliding 6-hour windows (a streaming job)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from huntlab.stream import stream_job


@stream_job(
    window="6 hours",
    slide="1 hour",
    watermark="2 hours",
    key="product_version",
    metric="crashes * 1000.0 / events",
    support="events >= 40",
    cold_start="population",
    output="stream_crash_rate",
)
def crash_rate_by_version(events: pa.Table) -> pa.Table:
    """Events and crashes per window and product version: the rate is crashes per 1,000."""
    crash = pc.cast(pc.equal(events.column("event_type"), "crash"), pa.int64())
    t = events.select(["window_start", "product_version"]).append_column("crashes", crash)
    agg = t.group_by(["window_start", "product_version"]).aggregate(
        [("crashes", "sum"), ("crashes", "count")]
    )
    return agg.rename_columns({"crashes_sum": "crashes", "crashes_count": "events"})
