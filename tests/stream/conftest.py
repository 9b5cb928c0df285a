"""Stream test helpers: a workspace whose log holds events in time order, a real HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from huntlab.events import TS_TYPE

COUNTS_JOB = """\
-- name: counts
-- window: 1 hour
-- watermark: 10 minutes
-- key: event_type
SELECT window_start, event_type, count(*) AS events FROM events GROUP BY ALL
"""


def make_ws(root: Path, stream_toml: str = "") -> object:
    """A workspace with [stream] settings for tests and the counts job."""
    from huntlab.workspace import Workspace

    Workspace.init(root)
    toml = (root / "huntlab.toml").read_text()
    toml = toml.replace("batch_interval_s = 1.0", stream_toml or "batch_interval_s = 0.05")
    (root / "huntlab.toml").write_text(toml)
    (root / "jobs" / "stream").mkdir(parents=True, exist_ok=True)
    (root / "jobs" / "stream" / "counts.sql").write_text(COUNTS_JOB)
    return Workspace(root)


def append(ws: object, table: pa.Table, rows_per_frame: int, prefix: str = "b") -> None:
    """Write a table into the workspace's log as frames (the collector's format)."""
    from huntlab.upstream.log import SegmentLog

    log = SegmentLog(ws.root / ws.config.upstream.log_dir, writable=True)  # type: ignore[attr-defined]
    try:
        for i in range(0, table.num_rows, rows_per_frame):
            log.append(f"{prefix}{i}", "events", table.slice(i, rows_per_frame))
    finally:
        log.close()


def sorted_sample(n: int, days: int = 3) -> pa.Table:
    from huntlab.sample import sample_table

    t = sample_table(n, days=days)
    ts = t.column("ts").to_numpy().astype("int64")
    return t.take(np.argsort(ts, kind="stable"))


def hourly_events(counts: list[int], family: str = "Qakbot", country: str = "BR") -> pa.Table:
    """counts[i] detections in hour i (spread over the hour), from 2026-10-01."""
    base = 1_790_812_800_000_000  # 2026-10-01T00:00:00Z in microseconds
    ts = []
    for hour, c in enumerate(counts):
        ts += [base + hour * 3_600_000_000 + j * (3_600_000_000 // max(c, 1)) for j in range(c)]
    n = len(ts)
    return pa.table(
        {
            "ts": pa.array(ts, pa.int64()).cast(TS_TYPE),
            "event_type": pa.array(["blocked_infection"] * n),
            "family": pa.array([family] * n),
            "country": pa.array([country] * n),
        }
    )


class Receiver:
    """A webhook receiver on loopback that fails the first `fail` requests with HTTP 500."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[list[dict]] = []
        self.requests = 0
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.requests <= outer.fail:
                    self.send_response(500)
                else:
                    outer.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
