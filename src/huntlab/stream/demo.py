"""The live streaming demo: collector, simulator and streaming jobs running at the same time.

A collector process listens on loopback; the simulator sends the sample generator's month of
events in event-time order on an accelerated clock (the outbreak and the crash spike included);
the bundled streaming jobs consume the durable log in micro-batches meanwhile. Alerts go to the
console and to the alert datasets; an SVG plot per alerting key marks the alert on its series.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huntlab.errors import HuntlabError
from huntlab.net import free_port

DEMO_JOBS = ("outbreak_by_family_country", "crash_rate_by_version")


@dataclass
class DemoResult:
    """What the demo saw: alerts (and whether the simulator was still sending), plots."""

    alerts: list[tuple[Any, bool]] = field(default_factory=list)  # (Alert, while sending)
    plots: list[Path] = field(default_factory=list)
    page: Path | None = None  # plots/index.html: every alert and its plot on one page
    sent: str = ""
    events: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)


def _workspace(directory: Path) -> tuple[Any, dict[str, str], dict[str, str]]:
    """A fresh workspace with the demo jobs, a demo geo table and generated client keys."""
    from huntlab.demo import install_jobs
    from huntlab.upstream.demo_geo import write_demo_geo
    from huntlab.workspace import Workspace

    ws = Workspace.init(directory)
    install_jobs(ws)
    geo = write_demo_geo(ws.root / "geo.csv")
    toml = (ws.root / "huntlab.toml").read_text()
    toml = toml.replace('# geo_table = "/etc/huntlab/ip-country.csv"', f'geo_table = "{geo}"')
    (ws.root / "huntlab.toml").write_text(toml)
    ws = Workspace(ws.root)
    keys = {p: secrets.token_hex(16) for p in ws.config.upstream.client_keys_env}
    env = {**os.environ, "HUNTLAB_PSEUDONYM_KEY": secrets.token_hex(32)}
    env.pop("HUNTLAB_WORKSPACE", None)
    env.update({ws.config.upstream.client_keys_env[p]: k for p, k in keys.items()})
    return ws, keys, env


def _start_collector(root: Path, port: int, env: dict[str, str], timeout: float = 30) -> Any:
    """`huntlab upstream serve` in its own process, waited for on /healthz."""
    import httpx

    out = root / ".huntlab" / "collector.out"
    cmd = [sys.executable, "-m", "huntlab.cli", "upstream", "serve", "--port", str(port)]
    with open(out, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise HuntlabError(f"the collector exited: {out.read_text()[-500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise HuntlabError(f"the collector did not answer in {timeout:.0f} s: see {out}")


def run_stream_demo(
    directory: Path, *, events: int, speed: float, print_fn: Any = print
) -> DemoResult:
    """Run the live demo in a fresh workspace at `directory`; returns what it saw."""
    from huntlab.stream.alerts import ConsoleSink
    from huntlab.stream.job import find_stream_job
    from huntlab.stream.processor import NEVER, StreamProcessor
    from huntlab.upstream.simulate import simulate

    ws, keys, env = _workspace(directory)
    port = free_port()
    collector = _start_collector(ws.root, port, env)
    res = DemoResult()
    sending = threading.Event()
    sending.set()

    class Recorder:
        def deliver(self, alerts: list[Any]) -> None:
            res.alerts += [(a, sending.is_set()) for a in alerts]

    sinks = [ConsoleSink(print_fn), Recorder()]
    procs = [StreamProcessor(ws, find_stream_job(ws.jobs_dir, j), sinks=sinks) for j in DEMO_JOBS]
    sim_out: list[Any] = []

    def send() -> None:
        try:
            sim_out.append(
                simulate(
                    f"http://127.0.0.1:{port}",
                    keys,
                    events=events,
                    batch_size=250,
                    bad_share=0.005,
                    speed=speed,
                )
            )
        finally:
            sending.clear()

    sender = threading.Thread(target=send, daemon=True)
    try:
        sender.start()
        while sending.is_set():
            tick = time.monotonic()
            for p in procs:
                p.step()
            time.sleep(max(0.0, 0.5 - (time.monotonic() - tick)))
        sender.join()
        for p in procs:  # what arrived after the last step, then close every window
            while p.step(drain=True).watermark_us != NEVER:
                pass
    finally:
        collector.terminate()
        collector.wait(10)
    res.sent = sim_out[0].summary() if sim_out else "the simulator failed"
    res.events = {p.job.name: p.state.events for p in procs}
    res.late = {p.job.name: p.state.late for p in procs}
    res.plots = sorted(
        {plot_alert(ws, p, a) for p in procs for a, _ in res.alerts if a.job == p.job.name}
    )
    res.page = write_page(ws.root / "plots" / "index.html", res)
    return res


def write_page(path: Path, res: DemoResult) -> Path:
    """One HTML page: the alerts as a table (sent while sending or after), then the plots."""
    from html import escape

    cols = ("job", "key", "window_start", "observed", "expected", "score", "detector")
    head = "".join(f"<th>{c}</th>" for c in (*cols, "while sending", "explanation"))
    rows = []
    for alert, sending in res.alerts:
        d = alert.to_json()
        cells = [escape(f"{d[c]:.1f}" if isinstance(d[c], float) else str(d[c])) for c in cols]
        cells += ["yes" if sending else "no", escape(d["explanation"])]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    figures = "".join(
        f'<figure><img src="{escape(p.name)}" alt="{escape(p.stem)}">'
        f"<figcaption>{escape(p.stem)}</figcaption></figure>"
        for p in res.plots
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>huntlab stream demo</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{max-width:100%}</style>"
        f"</head><body><h1>huntlab live streaming demo</h1><p>{escape(res.sent)}</p>"
        f"<h2>{len(res.alerts)} alert(s)</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
        f"<h2>Series with the alerts marked</h2>{figures}</body></html>",
        encoding="utf-8",
    )
    return path


def plot_alert(ws: Any, proc: Any, alert: Any) -> Path:
    """An SVG of the alerting key's series (observed, expected) with its alerts marked."""
    import numpy as np
    import pyarrow.compute as pc

    from huntlab.connectors.base import connector_for
    from huntlab.stream.backfill import _seconds, plot_svg

    table = connector_for(ws.store.get_dataset(proc.job.output)).read()
    names = [
        ", ".join(f"{k}={v}" for k, v in zip(proc.job.keys, row))
        for row in zip(*(table.column(k).to_pylist() for k in proc.job.keys))
    ]
    mine = table.filter(np.array([n == alert.key for n in names])).sort_by("window_start")
    safe = "".join(c if c.isalnum() else "_" for c in alert.key)
    path = ws.root / "plots" / f"{proc.job.name}__{safe}.svg"
    path.parent.mkdir(exist_ok=True)
    return plot_svg(
        _seconds(mine.column("window_start")),
        pc.cast(mine.column("metric"), "double").to_numpy(zero_copy_only=False),
        mine.column("expected").to_numpy(zero_copy_only=False),
        mine.column("anomaly").to_numpy(zero_copy_only=False),
        f"{proc.job.name}: {alert.key} (alert at {alert.to_json()['window_start']})",
        path,
    )
