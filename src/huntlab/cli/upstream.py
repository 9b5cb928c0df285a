"""`huntlab upstream ...`: the collector, compaction and the client simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from huntlab.cli.main import app, console, workspace

if TYPE_CHECKING:
    from huntlab.upstream.log import SegmentLog
    from huntlab.workspace import Workspace

upstream_app = typer.Typer(
    help="Client telemetry: collector, compaction, simulator.", no_args_is_help=True
)
app.add_typer(upstream_app, name="upstream")


@upstream_app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
) -> None:
    """Run the collector: POST /v1/upstream, GET /healthz, GET /metrics."""
    from huntlab.upstream.app import serve as run

    ws = workspace()
    cfg = ws.config.upstream
    console().print(f"collector listening on http://{host or cfg.host}:{port or cfg.port}")
    run(ws, host, port)


def _log(ws: Workspace) -> SegmentLog:
    from huntlab.upstream.log import SegmentLog

    cfg = ws.config.upstream
    return SegmentLog(ws.root / cfg.log_dir, segment_bytes=cfg.segment_mb << 20)


@upstream_app.command()
def compact(
    every: Annotated[
        float | None, typer.Option(help="Repeat every N seconds until interrupted.")
    ] = None,
) -> None:
    """Move the log's complete frames into managed datasets per event type, exactly once."""
    import time

    from rich.table import Table

    from huntlab.upstream.compact import compact as run_compact

    ws = workspace()
    cfg = ws.config.upstream
    while True:
        with _log(ws) as log:
            res = run_compact(ws, log, prefix=cfg.dataset_prefix)
            log.prune(cfg.dedup_window_hours * 3600)
        t = Table("dataset", "rows", header_style="bold cyan")
        for name, n in sorted(res.per_dataset.items()):
            t.add_row(name, f"{n:,}")
        if res.per_dataset:
            console().print(t)
        console().print(
            f"[green]compacted[/] {res.events:,} events and {res.quarantined:,} quarantined "
            f"records from {res.segments} segment(s); log position {res.position}"
        )
        if every is None:
            return
        time.sleep(every)


@upstream_app.command()
def status() -> None:
    """The log: segments, bytes, what compaction has not moved yet."""
    from huntlab.upstream.compact import pending_events, read_checkpoint

    ws = workspace()
    with _log(ws) as log:
        st = log.stats()
        console().print(
            f"log {log.dir}: {st['segments']} live segment(s), {st['bytes']:,} bytes; "
            f"compacted up to {read_checkpoint(log)}, {pending_events(log):,} rows pending"
        )


@upstream_app.command()
def simulate(
    url: Annotated[
        str | None, typer.Option(help="Collector base URL (default: [upstream] host and port).")
    ] = None,
    events: Annotated[int, typer.Option(help="Events to send.")] = 50_000,
    clients: Annotated[int, typer.Option(help="Concurrent client connections.")] = 2,
    batch: Annotated[int, typer.Option(help="Events per batch.")] = 1000,
    rate: Annotated[
        float | None, typer.Option(help="Events per second in all (default: as fast as acked).")
    ] = None,
    bad_share: Annotated[float, typer.Option(help="Share of malformed events.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 11,
    in_order: Annotated[
        bool, typer.Option(help="Send in event-time order (client jitter, a few late events).")
    ] = False,
    speed: Annotated[
        float | None,
        typer.Option(help="In event-time order, this many event seconds per wall second."),
    ] = None,
) -> None:
    """Send realistic client batches (keys from [upstream.client_keys_env]) to a collector."""
    from rich.progress import Progress

    from huntlab.demo import shared_urls_dir
    from huntlab.upstream.simulate import product_keys
    from huntlab.upstream.simulate import simulate as run_sim

    ws = workspace()
    cfg = ws.config.upstream
    with Progress(transient=True) as bar:
        task = bar.add_task("sending batches", total=events)
        res = run_sim(
            url or f"http://{cfg.host}:{cfg.port}",
            product_keys(cfg.client_keys_env),
            events=events,
            batch_size=batch,
            rate=rate,
            bad_share=bad_share,
            seed=seed,
            url_dir=shared_urls_dir(),
            clients=clients,
            in_order=in_order,
            speed=speed,
            on_batch=lambda r: bar.update(task, completed=r.events),
        )
    console().print(res.summary())
