"""Closed windows -> per-key detector scores, output rows and de-duplicated alerts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from huntlab.stream.alerts import Alert
from huntlab.stream.windows import US, event_us

if TYPE_CHECKING:
    from huntlab.stream.processor import StreamProcessor


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def with_metric(proc: StreamProcessor, closed: pa.Table) -> pa.Table:
    """Closed windows plus window_end, the watched metric and whether it has enough support."""
    job = proc.job
    values = [c for c in closed.schema.names if c not in ("window_start", *job.keys)]
    metric = job.metric or _quote(values[0])
    order = ", ".join(_quote(c) for c in ["window_start", *job.keys])
    proc.con.register("closed", closed)
    try:
        return proc.con.execute(
            f"SELECT window_start, window_start + to_microseconds({proc.window_us}) AS window_end,"
            f" * EXCLUDE (window_start), CAST(({metric}) AS DOUBLE) AS metric FROM closed "
            f"ORDER BY {order}"
        ).to_arrow_table()
    finally:
        proc.con.unregister("closed")


def key_names(proc: StreamProcessor, table: pa.Table) -> list[str]:
    """'family=Qakbot, country=BR' per row (or the job name when the job has no key)."""
    if not proc.job.keys:
        return [proc.job.name] * table.num_rows
    cols = [table.column(k).to_pylist() for k in proc.job.keys]
    return [", ".join(f"{k}={v}" for k, v in zip(proc.job.keys, row)) for row in zip(*cols)]


def _fill_gaps(proc: StreamProcessor, start: int) -> None:
    """Windows no event fell in: every known key observes the fill value (e.g. a zero count)."""
    from huntlab.stream.processor import FULL_AFTER, MAX_GAP_WINDOWS

    st, job = proc.state, proc.job
    if job.fill is None or st.last_start is None:
        return
    gap = (start - st.last_start) // proc.slide_us - 1
    for i in range(1, min(gap, MAX_GAP_WINDOWS) + 1):
        t = (st.last_start + i * proc.slide_us) / US
        record = not proc.snapshot_all
        for key, det in st.detectors.items():
            det.learn_one(t, job.fill)
            if record:
                proc.learned.append((key, t, job.fill))
        if len(proc.learned) > FULL_AFTER * len(st.detectors):  # a snapshot is cheaper
            proc.snapshot_all, proc.learned = True, []


def score_windows(proc: StreamProcessor, closed: pa.Table | None) -> tuple[pa.Table, list[Alert]]:
    """Score every closed window in time order per key; alerts for new anomalies only."""
    from huntlab.stream.processor import new_detector

    job, st = proc.job, proc.state
    if closed is None:
        return pa.table({}), []
    table = with_metric(proc, closed)
    n = table.num_rows
    keys = key_names(proc, table)
    starts = event_us(table, "window_start")
    metric = table.column("metric").to_numpy(zero_copy_only=False)
    score, expected = np.zeros(n), np.full(n, np.nan)
    anomalous = np.zeros(n, dtype=bool)
    alerts: list[Alert] = []
    now = int(time.time() * US)
    support = _support(proc, table)
    i = 0
    while i < n:
        start = int(starts[i])
        _fill_gaps(proc, start)
        seen = set()
        while i < n and starts[i] == start:
            key, x, t = keys[i], float(metric[i]), start / US
            det = st.detectors.get(key) or st.detectors.setdefault(key, new_detector(job))
            score[i], expected[i] = det.score_one(t, x), det.expected_one(t)
            # a new key is compared with every key of the job until its own detector warms up
            cold = det.seen < det.warmup and job.cold_start == "population"
            if cold:
                score[i], expected[i] = st.population.score(x), st.population.expected()
            anomalous[i] = bool(score[i] >= job.threshold and support[i])
            alert_id = f"{job.name}|{key}|{start}"
            if st.dedup.admit(key, bool(anomalous[i]), alert_id):
                alerts.append(
                    Alert(
                        alert_id,
                        job.name,
                        key,
                        start,
                        start + proc.window_us,
                        x,
                        float(expected[i]),
                        float(score[i]),
                        job.detector,
                        (
                            f"new key ({det.seen} of {det.warmup} warm-up windows): observed "
                            f"{x:.4g}, expected {expected[i]:.4g} from every key of the job"
                        )
                        if cold
                        else det.explain(t, x),
                        now,
                    )
                )
            det.learn_one(t, x)
            proc.learned.append((key, t, x))  # replayed on restore (see processor._save_state)
            if job.cold_start == "population":
                st.population.learn(x)
            seen.add(key)
            i += 1
        if job.fill is not None:
            for key, det in st.detectors.items():
                if key not in seen:
                    det.learn_one(start / US, job.fill)
                    proc.learned.append((key, start / US, job.fill))
                    st.dedup.admit(key, False, "")
        st.last_start = start
    out = table.append_column("expected", pa.array(expected, pa.float64()))
    out = out.append_column("score", pa.array(score, pa.float64()))
    out = out.append_column("anomaly", pa.array(anomalous, pa.bool_()))
    return out, alerts


def _support(proc: StreamProcessor, table: pa.Table) -> np.ndarray:
    """Which windows have enough data to alert on (the job's `support` condition)."""
    cond = proc.job.support
    if not cond or table.num_rows == 0:
        return np.ones(table.num_rows, dtype=bool)
    proc.con.register("scored", table)
    try:
        res = proc.con.execute(f"SELECT coalesce(({cond}), false) FROM scored").to_arrow_table()
    finally:
        proc.con.unregister("scored")
    return res.column(0).to_numpy(zero_copy_only=False).astype(bool)
