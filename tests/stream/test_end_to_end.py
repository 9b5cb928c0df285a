"""End to end: the simulator sends to a real collector; the streaming job finds the crash spike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.upstream.conftest import KEYS, Server, configure, free_port

pytestmark = pytest.mark.stream

CRASH_JOB = """\
-- name: crash_rate
-- window: 6 hours
-- slide: 3 hours
-- watermark: 31 days
-- key: product_version
-- metric: crashes * 1000.0 / events
-- support: events >= 40
-- cold_start: population
-- output: crash_rate
SELECT window_start, product_version,
       sum(CASE WHEN event_type = 'crash' THEN 1 ELSE 0 END) AS crashes, count(*) AS events
FROM events GROUP BY ALL
"""


def test_simulated_clients_to_collector_to_stream_alert(tmp_path: Path) -> None:
    from huntlab.connectors.base import connector_for
    from huntlab.sample import SPIKE_VERSION, planted_patterns
    from huntlab.stream.job import find_stream_job
    from huntlab.stream.processor import StreamProcessor
    from huntlab.upstream.simulate import simulate
    from huntlab.workspace import Workspace

    root = tmp_path / "ws"
    server = Server(root, free_port(), configure(root))
    server.start()
    try:
        res = simulate(server.url, KEYS, events=60_000, batch_size=2000, bad_share=0.01)
    finally:
        server.stop()
    assert res.accepted > 50_000
    ws = Workspace(root)
    (ws.jobs_dir / "stream").mkdir(exist_ok=True)
    (ws.jobs_dir / "stream" / "crash_rate.sql").write_text(CRASH_JOB)
    st = StreamProcessor(ws, find_stream_job(ws.jobs_dir, "crash_rate")).run(drain=True)
    assert st.events == res.accepted and st.late == 0  # the watermark covers the whole month
    alerts = connector_for(ws.store.get_dataset("crash_rate_alerts")).read().to_pylist()
    assert alerts and {a["key"] for a in alerts} == {f"product_version={SPIKE_VERSION}"}
    release = planted_patterns().spike_release
    first = min(a["window_start"] for a in alerts).date()
    assert release - dt.timedelta(days=1) <= first <= release + dt.timedelta(days=2)
