"""`huntlab upstream ...`: the collector, compaction and the client simulator."""

from __future__ import annotations

from typing import Annotated

import typer

from huntlab.cli.main import app, console, workspace

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


@upstream_app.command()
def compact() -> None:
    """Move complete log segments into managed datasets per event type, exactly once."""
    from rich.table import Table

    from huntlab.upstream.compact import compact as run_compact
    from huntlab.upstream.log import SegmentLog

    ws = workspace()
    cfg = ws.config.upstream
    log = SegmentLog(ws.root / cfg.log_dir, segment_bytes=cfg.segment_mb << 20)
    try:
        res = run_compact(ws, log, prefix=cfg.dataset_prefix)
    finally:
        log.close()
    t = Table("dataset", "rows", header_style="bold cyan")
    for name, n in sorted(res.per_dataset.items()):
        t.add_row(name, f"{n:,}")
    console().print(t)
    console().print(
        f"[green]compacted {res.segments} segment(s)[/]: {res.events:,} events, "
        f"{res.quarantined:,} quarantined"
    )


@upstream_app.command()
def simulate(
    url: Annotated[str, typer.Option(help="Collector base URL.")] = "http://127.0.0.1:8470",
    events: Annotated[int, typer.Option(help="Events to send.")] = 50_000,
    batch: Annotated[int, typer.Option(help="Events per batch.")] = 1000,
    rate: Annotated[float | None, typer.Option(help="Events per second (default: max).")] = None,
    bad_share: Annotated[float, typer.Option(help="Share of malformed events.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 11,
) -> None:
    """Send realistic client batches (keys from [upstream.client_keys_env]) to a collector."""
    import os

    from rich.progress import Progress

    from huntlab.demo import shared_urls_dir
    from huntlab.upstream.simulate import simulate as run_sim

    ws = workspace()
    keys = {
        p: os.environ[v] for p, v in ws.config.upstream.client_keys_env.items() if os.environ.get(v)
    }
    if not keys:
        from huntlab.errors import ConfigError

        raise ConfigError(
            "no client key is set for any product",
            "Export the variables named in [upstream.client_keys_env]",
        )
    with Progress(transient=True) as bar:
        task = bar.add_task("sending batches", total=events)
        res = run_sim(
            url,
            keys,
            events=events,
            batch_size=batch,
            rate=rate,
            bad_share=bad_share,
            seed=seed,
            url_dir=shared_urls_dir(),
            on_batch=lambda r: bar.update(task, completed=r.events),
        )
    lat = sorted(res.latencies) or [0.0]
    console().print(
        f"[green]sent {res.events:,} events[/] in {res.batches:,} batches: "
        f"{res.accepted:,} accepted, {res.rejected:,} rejected, {res.duplicates} duplicate "
        f"batches, {res.retries} retries; ack p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms"
    )
