"""The quick-start demo: a workspace with sample telemetry and the bundled hunting jobs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

JOBS_DIR = Path(__file__).parent / "jobs"
# The order the demo runs them in, with the question each answers.
DEMO_JOBS = [
    ("family_prevalence", "Prevalence and spread of each detection family"),
    ("hash_first_seen", "First and last seen of each malicious file"),
    ("rising_families", "Families rising fastest (family x country, last days vs before)"),
    ("top_blocked_domains", "Top blocked domains"),
    ("crash_rate_by_version", "Crash rate by product version"),
    ("hits_by_family", "Detection hit counts per family (map-reduce)"),
]


def shared_urls_dir() -> Path | None:
    """`../shared/data/urls` beside the repository or the current directory, if present."""
    for base in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[3]):
        cand = base / ".." / "shared" / "data" / "urls"
        if cand.is_dir():
            return cand.resolve()
    return None


def install_jobs(ws: Workspace) -> list[Path]:
    """Copy the bundled hunting jobs into the workspace's jobs/ (existing files are kept).

    Streaming jobs (jobs/stream/) are copied too; they are not batch jobs, so not in DEMO_JOBS.
    """
    copied = []
    for folder, target in ((JOBS_DIR, ws.jobs_dir), (JOBS_DIR / "stream", ws.jobs_dir / "stream")):
        for src in sorted(folder.iterdir()):
            if src.suffix in (".sql", ".py") and not src.name.startswith("_"):
                target.mkdir(exist_ok=True)
                dst = target / src.name
                if not dst.exists():
                    shutil.copyfile(src, dst)
                    copied.append(dst)
    return copied


def load_sample(
    ws: Workspace, n: int, *, dataset: str = "events", seed: int = 7, progress: bool = False
) -> int:
    """Generate n events into a managed dataset partitioned by event date (one commit)."""
    import pyarrow as pa

    from huntlab.connectors.base import connector_for
    from huntlab.sample import generate_events

    url_dir = shared_urls_dir()
    batches = generate_events(n, seed=seed, url_dir=url_dir)
    if progress:
        batches = _with_progress(batches, n)
    table = pa.Table.from_batches(list(batches))
    entry = ws.ensure_managed(dataset, ["event_date"])
    connector_for(entry).write(table, "overwrite")
    ws.store.touch_dataset(dataset)
    return table.num_rows


def _with_progress(batches: Any, total: int) -> Any:
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("generating events", total=total)
        for b in batches:
            bar.advance(task, b.num_rows)
            yield b


def run_demo(directory: Path, events: int, console: Any) -> None:
    """The quick start: a fresh workspace, sample data, every bundled job, their findings."""
    from huntlab.cli.render import arrow_table
    from huntlab.jobs.runner import run_job
    from huntlab.workspace import Workspace

    ws = Workspace.init(directory)
    install_jobs(ws)
    console.print(f"[bold]workspace[/] {ws.root}")
    with console.status(f"generating {events:,} sample events"):
        n = load_sample(ws, events)
    console.print(f"generated {n:,} upstream events into dataset 'events'")
    for name, question in DEMO_JOBS:
        res = run_job(ws, name)
        console.print(
            arrow_table(
                res.table,
                8,
                title=f"{question}  [dim]({name}, {res.seconds:.2f}s, -> {res.output})[/]",
            )
        )
    run_upstream_demo(ws, max(10_000, events // 10), console)
    console.print(
        "[green]demo finished[/]: try `huntlab -w "
        f"{directory} runs`, `huntlab -w {directory} shell`"
    )


def run_upstream_demo(ws: Workspace, events: int, console: Any) -> None:
    """Clients -> collector (validate, anonymize, fsync) -> log -> compaction -> a public job."""
    import os
    import secrets

    from huntlab.cli.render import arrow_table
    from huntlab.jobs.runner import run_job
    from huntlab.upstream.app import running_collector
    from huntlab.upstream.compact import compact
    from huntlab.upstream.demo_geo import write_demo_geo
    from huntlab.upstream.log import SegmentLog
    from huntlab.upstream.simulate import simulate

    cfg = ws.config.upstream
    # Demo-only secrets, for this process: real deployments keep them outside the workspace.
    os.environ.setdefault(cfg.anonymize.key_env or "HUNTLAB_PSEUDONYM_KEY", secrets.token_hex(32))
    keys = {p: secrets.token_hex(16) for p in cfg.client_keys_env}
    if not cfg.anonymize.geo_table:
        cfg.anonymize.geo_table = str(write_demo_geo(ws.meta_dir / "demo-geo.csv"))
    with console.status(f"clients sending {events:,} events to a local collector"):
        with running_collector(ws, {k.encode(): p for p, k in keys.items()}) as url:
            sim = simulate(
                url,
                keys,
                events=events,
                clients=2,
                bad_share=0.02,
                seed=21,
                url_dir=shared_urls_dir(),
            )
    console.print(f"[bold]client upstream[/]: {sim.summary()}")
    with SegmentLog(ws.root / cfg.log_dir) as log:
        res = compact(ws, log, prefix=cfg.dataset_prefix)
    console.print(
        f"compacted {res.events:,} anonymized events into "
        f"{len(res.per_dataset) - 1} upstream_* datasets, {res.quarantined:,} "
        "quarantined with their reasons (dataset upstream_quarantine)"
    )
    pub = run_job(ws, "published_family_by_country")
    console.print(
        arrow_table(
            pub.table,
            8,
            title=(
                f"Published (k-anonymous, k={ws.config.publish.k_anonymity}): detections per "
                f"family and country  [dim]({pub.suppressed_groups:,} small groups suppressed)[/]"
            ),
        )
    )
