"""Compaction moves the log into datasets exactly once, whatever point it is stopped at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from huntlab.connectors.base import connector_for
from huntlab.connectors.delta import DeltaConnector
from huntlab.events import validate_batch
from huntlab.sample import generate_events
from huntlab.upstream.compact import compact, dataset_names, read_checkpoint
from huntlab.upstream.log import SegmentLog
from huntlab.workspace import Workspace

pytestmark = pytest.mark.upstream


def fill_log(ws: Workspace, n: int, batch: int = 1000) -> int:
    """Append n generated events in batches (and a quarantine frame per batch); rows appended."""
    total = 0
    with SegmentLog(
        ws.root / ws.config.upstream.log_dir, segment_bytes=1 << 18, writable=True
    ) as log:
        for i, rb in enumerate(generate_events(n, seed=3, batch_size=batch)):
            valid, _ = validate_batch(pa.Table.from_batches([rb]))
            log.append(f"b{i}", "events", valid)
            q = pa.table({"reason": ["malformed_json"], "record": ["{}"]})
            log.append(f"b{i}#q", "quarantine", q)
            total += valid.num_rows
    return total


def stored(ws: Workspace) -> dict[str, list[str]]:
    out = {}
    for kind, name in dataset_names("upstream_").items():
        if ws.store.has_dataset(name) and kind != "quarantine":
            conn = connector_for(ws.store.get_dataset(name))
            if conn.exists():  # type: ignore[attr-defined]
                out[name] = conn.read(["event_id"]).column("event_id").to_pylist()
    return out


def check_exactly_once(ws: Workspace, expected: int) -> None:
    ids = [i for v in stored(ws).values() for i in v]
    assert len(ids) == expected == len(set(ids))


def test_crash_between_dataset_commits_then_rerun(
    empty_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = fill_log(empty_ws, 20_000)
    real_write = DeltaConnector.write
    calls = {"n": 0}

    def failing_write(self: DeltaConnector, *a: object, **kw: object) -> str | None:
        calls["n"] += 1
        if calls["n"] == 3:  # two datasets committed, the process dies before the third
            raise KeyboardInterrupt("simulated crash")
        return real_write(self, *a, **kw)

    monkeypatch.setattr(DeltaConnector, "write", failing_write)
    log = SegmentLog(empty_ws.root / empty_ws.config.upstream.log_dir)
    with pytest.raises(KeyboardInterrupt):
        compact(empty_ws, log)
    partial = sum(len(v) for v in stored(empty_ws).values())
    assert 0 < partial < expected
    monkeypatch.setattr(DeltaConnector, "write", real_write)
    res = compact(empty_ws, log)
    assert res.events == expected - partial
    check_exactly_once(empty_ws, expected)
    assert compact(empty_ws, log).events == 0  # nothing new: nothing written
    q = connector_for(empty_ws.store.get_dataset("upstream_quarantine")).read()
    assert q.num_rows == 20 and set(q.column("batch_id").to_pylist()) == {
        f"b{i}" for i in range(20)
    }
    assert read_checkpoint(log) == log.end() and log.segments()[:-1] == []


def test_sigkill_during_compaction_then_rerun(empty_ws: Workspace) -> None:
    expected = fill_log(empty_ws, 60_000)
    code = (
        "import sys; import huntlab.upstream.compact as c; c.CHUNK_ROWS = 3000\n"
        "from huntlab.workspace import Workspace\nfrom huntlab.upstream.log import SegmentLog\n"
        "ws = Workspace(__import__('pathlib').Path(sys.argv[1]))\n"
        "c.compact(ws, SegmentLog(ws.root / ws.config.upstream.log_dir))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(empty_ws.root)])
    delta_log = empty_ws.data_dir / "upstream_blocked_infection" / "_delta_log"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if delta_log.is_dir() and len(list(delta_log.glob("*.json"))) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "compaction finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = sum(len(v) for v in stored(empty_ws).values())
    assert 0 < partial < expected
    compact(empty_ws, SegmentLog(empty_ws.root / empty_ws.config.upstream.log_dir))
    check_exactly_once(empty_ws, expected)
