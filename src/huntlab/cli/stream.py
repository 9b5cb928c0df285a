"""`huntlab stream ...` and `huntlab anomaly ...`: streaming jobs, NAB evaluation, backfill."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from huntlab.cli.main import app, console, workspace

stream_app = typer.Typer(help="Streaming jobs over the upstream log.", no_args_is_help=True)
anomaly_app = typer.Typer(
    help="Anomaly detectors: NAB evaluation, backfill over history, plots.", no_args_is_help=True
)
app.add_typer(stream_app, name="stream")
app.add_typer(anomaly_app, name="anomaly")


@stream_app.command()
def run(
    job: Annotated[str, typer.Argument(help="Streaming job name (jobs/stream/) or file.")],
    drain: Annotated[
        bool, typer.Option(help="Stop at the log's end, closing every open window.")
    ] = False,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
    quiet: Annotated[bool, typer.Option(help="No line per micro-batch.")] = False,
) -> None:
    """Consume the upstream log in micro-batches; windows, detectors and alerts, exactly once."""
    from huntlab.stream.alerts import sinks_from_config
    from huntlab.stream.job import find_stream_job
    from huntlab.stream.processor import StreamProcessor

    ws = workspace()
    out = console()
    spec = find_stream_job(ws.jobs_dir, job)
    proc = StreamProcessor(ws, spec, sinks=sinks_from_config(ws.config.stream, out.print))
    out.print(
        f"stream job [bold]{spec.name}[/]: window {spec.window_s}s, slide {spec.slide_s}s, "
        f"watermark {spec.watermark_s}s, keys {spec.keys or '-'}; "
        f"from {proc.state.position or 'the start'}"
    )

    def report(rep) -> None:  # type: ignore[no-untyped-def]
        if not quiet and (rep.events or rep.committed):
            out.print(
                f"batch {rep.seq}: {rep.events:,} events, {rep.late:,} late, "
                f"{rep.windows:,} windows closed, {len(rep.alerts)} alert(s), "
                f"{rep.seconds * 1000:.0f} ms{' [committed]' if rep.committed else ''}"
            )

    try:
        st = proc.run(drain=drain, max_seconds=max_seconds, on_batch=report)
    except KeyboardInterrupt:
        st = proc.state
    out.print(
        f"[green]{spec.name}[/]: {st.events:,} events, {st.late:,} late (beyond the watermark, "
        f"counted and not aggregated), {st.windows:,} windows, {st.alerts} alert(s) -> "
        f"datasets {spec.output}, {spec.output}_alerts"
    )


@stream_app.command()
def status(job: Annotated[str, typer.Argument(help="Streaming job name or file.")]) -> None:
    """Where a streaming job stands: log position, micro-batches, events, late events, alerts."""
    from huntlab.stream.job import find_stream_job
    from huntlab.stream.processor import StreamProcessor

    ws = workspace()
    proc = StreamProcessor(ws, find_stream_job(ws.jobs_dir, job))
    st = proc.state
    open_windows = st.open.num_rows if st.open is not None else 0
    console().print(
        f"{proc.job.name}: position {st.position or '(start)'}, {st.seq} commits, "
        f"{st.events:,} events, {st.late:,} late, {st.windows:,} windows closed, "
        f"{open_windows:,} open, {len(st.detectors):,} keys, {st.alerts} alert(s)"
    )


@anomaly_app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="NAB folder (data/, labels/).")] = Path(
        "../shared/data/nab"
    ),
    detector: Annotated[
        str,
        typer.Option(help="context-rest (default), context, ensemble, robust, seasonal, ewma, knn"),
    ] = "context-rest",
    out: Annotated[Path | None, typer.Option(help="Write NAB results here.")] = None,
    only: Annotated[list[str] | None, typer.Option(help="Only series whose name has this.")] = None,
    workers: Annotated[int, typer.Option(help="Processes.")] = 2,
) -> None:
    """Score a detector on the Numenta Anomaly Benchmark: every profile, per category."""
    from rich.table import Table

    from huntlab.stream.evaluate import evaluate as run_eval
    from huntlab.stream.nab import PROFILES

    ev = run_eval(data, detector, out=out, only=only, workers=workers)
    t = Table("category", *PROFILES, header_style="bold cyan", title=f"NAB scores: {detector}")
    for cat, scores in sorted(ev.by_category.items()):
        t.add_row(cat, *(f"{scores[p]:.1f}" for p in PROFILES))
    t.add_row("[bold]all[/]", *(f"[bold]{ev.overall[p]:.1f}[/]" for p in PROFILES))
    t.add_row("threshold", *(f"{ev.thresholds[p]:.4f}" for p in PROFILES))
    console().print(t)
    console().print(
        f"{ev.series} series, {ev.rows:,} rows" + (f"; results in {out}" if out else "")
    )


@anomaly_app.command()
def backfill(
    dataset: Annotated[str, typer.Argument(help="Dataset of windows (one row per window/key).")],
    metric: Annotated[str, typer.Option(help="Column to watch.")],
    time_col: Annotated[str, typer.Option("--time", help="Window start column.")] = "window_start",
    key: Annotated[list[str] | None, typer.Option(help="Key column (repeatable).")] = None,
    detector: Annotated[str, typer.Option(help="Detector name.")] = "robust",
    threshold: Annotated[float, typer.Option(help="Alert threshold.")] = 0.5,
    output: Annotated[str | None, typer.Option(help="Output dataset.")] = None,
    plot: Annotated[Path | None, typer.Option(help="SVG plot of the key with most alerts.")] = None,
) -> None:
    """Run the streaming detectors in batch over a history of windows; write scores."""
    import numpy as np

    from huntlab.connectors.base import connector_for
    from huntlab.stream.backfill import _seconds, plot_svg
    from huntlab.stream.backfill import backfill as run_backfill

    ws = workspace()
    table = connector_for(ws.store.get_dataset(dataset)).read()
    scored = run_backfill(
        table, time_col=time_col, metric=metric, keys=key, detector=detector, threshold=threshold
    )
    name = output or f"{dataset}_scored"
    connector_for(ws.ensure_managed(name)).write(scored, "overwrite")
    n_alerts = int(np.asarray(scored.column("anomaly")).sum())
    console().print(
        f"[green]scored {scored.num_rows:,} windows[/] with {detector}: {n_alerts} above "
        f"{threshold} -> dataset {name}"
    )
    if plot is not None:
        first, title = scored, f"{dataset}.{metric}"
        if key:  # the key with the most alerts
            tuples = list(zip(*(scored.column(k).to_pylist() for k in key)))
            flags = scored.column("anomaly").to_pylist()
            counts: dict[tuple, int] = {}
            for tup, flag in zip(tuples, flags):
                counts[tup] = counts.get(tup, 0) + int(flag)
            best = max(counts, key=lambda k: counts[k])
            first = scored.filter(np.array([tup == best for tup in tuples]))
            title += " [" + ", ".join(f"{k}={v}" for k, v in zip(key, best)) + "]"
        plot_svg(
            _seconds(first.column(time_col)),
            first.column(metric).to_numpy().astype(float),
            first.column("expected").to_numpy(),
            first.column("anomaly").to_numpy(zero_copy_only=False),
            title,
            plot,
        )
        console().print(f"plot written to {plot}")


@stream_app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="A new workspace for the demo.")] = Path(
        "stream-demo-ws"
    ),
    events: Annotated[int, typer.Option(help="Events the simulator sends (a month).")] = 120_000,
    speed: Annotated[
        float, typer.Option(help="Event seconds per wall second (43200: a month a minute).")
    ] = 43_200.0,
) -> None:
    """Live: collector, simulator (outbreak, crash spike) and streaming jobs at the same time."""
    from huntlab.stream.demo import run_stream_demo

    out = console()
    out.print(
        f"[bold]live streaming demo[/] in {directory}: {events:,} events, speed {speed:,.0f}x"
    )
    res = run_stream_demo(directory, events=events, speed=speed, print_fn=out.print)
    out.print(res.sent)
    for job, n in res.events.items():
        out.print(f"{job}: {n:,} events, {res.late[job]:,} late (beyond the watermark, counted)")
    live = sum(w for _, w in res.alerts)
    out.print(f"{len(res.alerts)} alert(s), {live} while the simulator was sending")
    for p in sorted(set(res.plots)):
        out.print(f"plot: {p}")
    if res.page is not None:
        out.print(f"alerts and plots on one page: {res.page}")
