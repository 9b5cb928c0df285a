"""The streaming benchmarks run as README gives them (short and slow, so nothing is timed here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stream

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    cmd = [sys.executable, "-m", *args]
    r = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_stream_benchmark_prints_its_table() -> None:
    # bursts start after 20 s of history, one every 2 s: 26 s gives two that must alert
    out = bench("benchmarks.stream", "--rate", "20000", "--seconds", "26")
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    processed = next(v for k, v in rows.items() if k.startswith("processed"))
    assert float(processed.split()[3].replace(",", "")) > 0, out  # events/s: some were processed
    assert any(k.startswith("append->commit p99") for k in rows), out
    alerted, _of, sent = rows["bursts alerted"].split()[2:5]
    assert int(sent) >= 2 and int(alerted) >= 1, out
    assert "nan" not in rows["ack->alert p99 (s)"], out


def test_detector_benchmark_prints_every_detector() -> None:
    out = bench("benchmarks.detectors", "--rows", "400")
    for name in ("robust", "ewma", "context", "ensemble"):
        assert any(line.startswith(name) for line in out.splitlines()), out
