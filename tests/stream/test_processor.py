"""The stream processor: windows, watermark, exactly-once restarts, alerts, sinks, backfill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from huntlab.errors import JobError
from huntlab.events import TS_TYPE
from huntlab.stream.alerts import WebhookSink
from huntlab.stream.job import find_stream_job, parse_duration, parse_stream_sql
from huntlab.stream.processor import StreamProcessor
from huntlab.stream.windows import US, assign, late_mask, merge, split_closed
from tests.stream.conftest import COUNTS_JOB, append, hourly_events, make_ws, sorted_sample

pytestmark = pytest.mark.stream
H = 3600 * US


def _events(ts_us: list[int]) -> pa.Table:
    return pa.table({"ts": pa.array(ts_us, pa.int64()).cast(TS_TYPE), "k": ["a"] * len(ts_us)})


def test_sliding_windows_hold_each_event_window_over_slide_times() -> None:
    t = assign(_events([0, H + 5, 2 * H - 1]), 2 * H, H, None)
    starts = sorted(pc.cast(t.column("window_start"), pa.int64()).to_pylist())
    assert starts == [-H, 0, 0, 0, H, H]


def test_late_events_are_those_whose_first_window_closed() -> None:
    ts = np.array([0, H - 1, H, 2 * H])
    assert late_mask(ts, H, H).tolist() == [True, True, False, False]
    assert late_mask(ts, H, None).tolist() == [False] * 4


def test_merge_adds_partial_aggregates_and_closing_splits_by_watermark() -> None:
    a = pa.table({"window_start": pa.array([0, H], pa.int64()), "k": ["x", "x"], "n": [1, 2]})
    b = pa.table({"window_start": pa.array([H, 2 * H], pa.int64()), "k": ["x", "x"], "n": [5, 1]})
    a = a.set_column(0, "window_start", a.column(0).cast(TS_TYPE))
    b = b.set_column(0, "window_start", b.column(0).cast(TS_TYPE))
    m = merge(a, b, ["window_start", "k"]).sort_by("window_start")
    assert m.column("n").to_pylist() == [1, 7, 1]
    closed, still = split_closed(m, H, 2 * H)
    assert closed.num_rows == 2 and still.num_rows == 1


@given(st.integers(1, 10_000), st.sampled_from(["s", "seconds", "minutes", "m", "hour", "days"]))
def test_durations_parse(n: int, unit: str) -> None:
    assert parse_duration(f"{n} {unit}") % n == 0


@given(st.text(max_size=20))
def test_bad_durations_are_job_errors(text: str) -> None:
    try:
        assert parse_duration(text) > 0
    except JobError:
        pass


def test_job_header_checks() -> None:
    job = parse_stream_sql(COUNTS_JOB)
    assert (job.window_s, job.slide_s, job.watermark_s, job.keys) == (
        3600,
        3600,
        600,
        ["event_type"],
    )
    with pytest.raises(JobError, match="whole multiple"):
        parse_stream_sql(COUNTS_JOB.replace("-- key:", "-- slide: 25 minutes\n-- key:"))
    with pytest.raises(JobError, match="unknown header"):
        parse_stream_sql("-- window: 1 hour\n-- colour: red\nSELECT 1")
    with pytest.raises(JobError, match="no window"):
        parse_stream_sql("SELECT 1")


def _output(ws, name: str = "counts") -> pa.Table:
    from huntlab.connectors.base import connector_for

    return connector_for(ws.store.get_dataset(name)).read()


def test_drain_counts_every_event_once_and_reports_late_ones(tmp_path: Path) -> None:
    ws = make_ws(tmp_path / "ws", "batch_interval_s = 0.01\nmax_batch_events = 5000")
    events = sorted_sample(20_000, days=2)
    append(ws, events, 1000)
    late = hourly_events([3], family="Late")  # two days behind the watermark
    i = events.schema.get_field_index("ts")
    late = events.slice(0, 3).set_column(i, "ts", late.column("ts"))
    append(ws, late, 10, prefix="late")
    st = StreamProcessor(ws, find_stream_job(ws.jobs_dir, "counts")).run(drain=True)
    out = _output(ws)
    assert st.events == 20_003 and st.late == 3
    assert pc.sum(out.column("events")).as_py() == 20_000
    keys = out.select(["window_start", "event_type"]).group_by(["window_start", "event_type"])
    assert keys.aggregate([]).num_rows == out.num_rows  # no window twice
    from typer.testing import CliRunner

    from huntlab.cli.main import app

    res = CliRunner().invoke(app, ["-w", str(ws.root), "stream", "status", "counts"])
    assert res.exit_code == 0 and "20,003 events, 3 late" in res.output, res.output


def test_sigkill_then_restart_is_exactly_once(tmp_path: Path) -> None:
    ws = make_ws(
        tmp_path / "ws",
        "batch_interval_s = 0.01\nmax_batch_events = 1000\ncheckpoint_interval_s = 0",
    )
    events = sorted_sample(40_000, days=2)
    append(ws, events, 500)
    env = {**os.environ, "HUNTLAB_WORKSPACE": str(ws.root)}
    cmd = [sys.executable, "-m", "huntlab.cli", "stream", "run", "counts", "--quiet"]
    log = open(tmp_path / "stream.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ws.root, env=env, stdout=log, stderr=subprocess.STDOUT)
    delta_log = ws.root / "data" / "counts" / "_delta_log"
    deadline = time.time() + 60
    while len(list(delta_log.glob("*.json")) if delta_log.is_dir() else []) < 8:
        assert proc.poll() is None, (tmp_path / "stream.out").read_text()[-2000:]
        assert time.time() < deadline, "no commits within 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = pc.sum(_output(ws).column("events")).as_py() or 0
    assert partial < 40_000  # killed mid-stream
    done = subprocess.run(
        [*cmd, "--drain"], cwd=ws.root, env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
    out = _output(ws)
    assert pc.sum(out.column("events")).as_py() == 40_000
    assert out.group_by(["window_start", "event_type"]).aggregate([]).num_rows == out.num_rows
    expected = (
        events.append_column("hour", pc.floor_temporal(events.column("ts"), unit="hour"))
        .group_by(["hour", "event_type"])
        .aggregate([("ts", "count")])
    )
    assert expected.num_rows == out.num_rows


def test_outbreak_alerts_once_while_it_lasts_and_reaches_the_webhook(
    tmp_path: Path, receiver
) -> None:
    from huntlab.stream.alerts import sinks_from_config

    ws = make_ws(tmp_path / "ws", "batch_interval_s = 0.01")
    cfg = ws.root / "huntlab.toml"
    text = cfg.read_text().replace("console = true", "console = false")
    text += f'\n[[stream.webhooks]]\nurl = "{receiver.url}"\nbackoff_s = 0.05\n'
    cfg.write_text(text)
    ws = type(ws)(ws.root)
    job = ws.jobs_dir / "stream" / "outbreak.sql"
    job.write_text(
        "-- window: 1 hour\n-- key: family, country\n-- noise: poisson\n-- warmup: 24\n"
        "-- support: detections >= 20\n"
        "SELECT window_start, family, country, count(*) AS detections FROM events GROUP BY ALL"
    )
    rng = np.random.default_rng(0)
    counts = [int(c) for c in rng.poisson(30, 96)]
    counts[80:84] = [300, 320, 310, 290]  # a four-hour outbreak
    append(ws, hourly_events(counts), 200)
    spec = find_stream_job(ws.jobs_dir, "outbreak")
    proc = StreamProcessor(ws, spec, sinks=sinks_from_config(ws.config.stream))
    st = proc.run(drain=True)
    alerts = _output(ws, "outbreak_alerts").to_pylist()
    assert st.alerts == 1 and len(alerts) == 1
    a = alerts[0]
    assert a["key"] == "family=Qakbot, country=BR" and a["observed"] == 300
    assert a["expected"] < 60 and a["score"] >= spec.threshold and a["explanation"]
    assert receiver.requests == 3  # two HTTP 500 answers, retried with backoff
    assert [x["alert_id"] for x in receiver.bodies[0]] == [a["alert_id"]]
    scored = _output(ws, "outbreak").sort_by("window_start")
    assert scored.column("anomaly").to_pylist()[80] is True


def test_webhook_gives_up_after_its_retries(receiver) -> None:
    receiver.fail = 100
    sink = WebhookSink(receiver.url, retries=2, backoff_s=0.01)
    t0 = time.perf_counter()
    sink.deliver([])
    assert receiver.requests == 3 and sink.failed == 0
    assert time.perf_counter() - t0 >= 0.03  # 0.01 + 0.02 backoff


def test_backfill_a_year_of_hourly_windows_in_one_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from huntlab.cli.main import app
    from huntlab.connectors.base import connector_for

    ws = make_ws(tmp_path / "ws")
    n = 365 * 24
    rng = np.random.default_rng(1)
    hours = np.arange(n)
    value = 50 + 20 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 3, n)
    value[6000] = 400.0
    t = pa.table(
        {
            "window_start": pa.array(1_700_000_000_000_000 + hours * H, pa.int64()).cast(TS_TYPE),
            "key": ["all"] * n,
            "events": value,
        }
    )
    connector_for(ws.ensure_managed("hourly")).write(t, "overwrite")
    svg = tmp_path / "plot.svg"
    res = CliRunner().invoke(
        app,
        [
            "-w",
            str(ws.root),
            "anomaly",
            "backfill",
            "hourly",
            "--metric",
            "events",
            "--key",
            "key",
            "--plot",
            str(svg),
        ],
    )
    assert res.exit_code == 0, res.output
    out = connector_for(ws.store.get_dataset("hourly_scored")).read().sort_by("window_start")
    assert out.num_rows == n
    score = out.column("score").to_numpy()
    assert int(np.argmax(score)) == 6000 and out.column("anomaly").to_pylist()[6000]
    assert svg.read_text().startswith("<svg") and "alert" in svg.read_text()


def test_incremental_state_chain_restores_every_key(tmp_path: Path, monkeypatch) -> None:
    import pickle

    import huntlab.stream.processor as processor

    monkeypatch.setattr(processor, "COMPACT_EVERY", 3)
    ws = make_ws(tmp_path / "ws", "max_batch_events = 1500\ncheckpoint_interval_s = 0")
    (ws.jobs_dir / "stream" / "fam.sql").write_text(
        "-- window: 1 hour\n-- watermark: 0 s\n-- key: family\n-- fill: none\n"
        "SELECT window_start, family, count(*) AS n FROM events GROUP BY ALL"
    )
    append(ws, sorted_sample(30_000, days=2), 500)
    spec = find_stream_job(ws.jobs_dir, "fam")
    first = StreamProcessor(ws, spec)
    for _ in range(8):
        first.step()
    st = first.state
    assert st.seq >= 7 and any(".part." in n for n in st.chain) and len(st.chain) <= 3
    on_disk = sorted(p.name for p in first.state_dir.glob("state-*.pkl"))
    assert on_disk == sorted(st.chain)  # older chains were removed after the commit
    again = StreamProcessor(ws, spec).state
    assert again.seq == st.seq and again.position == st.position
    assert set(again.detectors) == set(st.detectors)
    for key, det in st.detectors.items():
        assert pickle.dumps(again.detectors[key]) == pickle.dumps(det), key


@pytest.mark.parametrize("fill", ["none", "0"])
def test_a_restored_processor_scores_like_one_that_never_stopped(
    tmp_path: Path, monkeypatch, fill: str
) -> None:
    """Restarts mid-chain (snapshot slices, replayed observations) change no score or state."""
    import pickle

    import huntlab.stream.processor as processor

    monkeypatch.setattr(processor, "COMPACT_EVERY", 4)
    job = (
        f"-- window: 1 hour\n-- watermark: 0 s\n-- key: family\n-- fill: {fill}\n-- warmup: 4\n"
        "SELECT window_start, family, count(*) AS n FROM events GROUP BY ALL"
    )
    events = sorted_sample(30_000, days=3)
    outs, states = [], []
    for restart in (False, True):
        ws = make_ws(
            tmp_path / f"ws{restart}", "max_batch_events = 1000\ncheckpoint_interval_s = 0"
        )
        (ws.jobs_dir / "stream" / "fam.sql").write_text(job)
        append(ws, events, 500)
        spec = find_stream_job(ws.jobs_dir, "fam")
        proc = StreamProcessor(ws, spec)
        for i in range(40):
            if restart and i in (9, 23, 30):
                assert any(".part." in n for n in proc.state.chain)
                proc = StreamProcessor(ws, spec)
            proc.step()
        states.append({k: pickle.dumps(d) for k, d in proc.state.detectors.items()})
        proc.run(drain=True)
        out = _output(ws, spec.output).sort_by(
            [("window_start", "ascending"), ("family", "ascending")]
        )
        outs.append(out.select(["window_start", "family", "n", "expected", "score", "anomaly"]))
    assert outs[0].num_rows > 500 and outs[0].equals(outs[1])
    assert states[0] == states[1]


def test_a_long_filled_gap_checkpoints_every_key_instead_of_its_observations(
    tmp_path: Path,
) -> None:
    """Replaying a gap that every key fills would cost more than a snapshot of all keys."""
    import pickle

    ws = make_ws(tmp_path / "ws", "max_batch_events = 36\ncheckpoint_interval_s = 0")
    (ws.jobs_dir / "stream" / "fam.sql").write_text(
        "-- window: 1 minute\n-- watermark: 0 s\n-- key: family\n-- fill: 0\n-- warmup: 3\n"
        "SELECT window_start, family, count(*) AS n FROM events GROUP BY ALL"
    )
    minute = 60 * US
    rows = [
        (f, 1_790_812_800 * US + m * minute + j) for m in range(6) for f in "ab" for j in range(3)
    ]
    late = [(f, 1_790_812_800 * US + 500 * minute + j) for f in "ab" for j in range(3)]
    for i, part in enumerate((rows, late)):
        table = pa.table(
            {
                "ts": pa.array([t for _, t in part], pa.int64()).cast(TS_TYPE),
                "family": [f for f, _ in part],
            }
        )
        append(ws, table, 100, prefix=f"p{i}")
    spec = find_stream_job(ws.jobs_dir, "fam")
    proc = StreamProcessor(ws, spec)
    proc.run(drain=True)
    st = proc.state
    assert st.seq >= 2 and st.chain == [f"state-{st.seq:012d}.full.pkl"], st.chain
    again = StreamProcessor(ws, spec).state
    for key, det in proc.state.detectors.items():
        assert det.seen > 400
        assert pickle.dumps(again.detectors[key]) == pickle.dumps(det), key
