"""The `huntlab` command line: one place turns errors into one clear line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

app = typer.Typer(
    name="huntlab",
    help="Hunt malicious content in security telemetry: datasets, jobs, SQL and a shell.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(
    help="The data repository: list, add, show, preview datasets.", no_args_is_help=True
)
app.add_typer(datasets_app, name="datasets")

_STATE: dict[str, object] = {"debug": False, "workspace": None}


def console():
    from rich.console import Console

    return Console()


def workspace() -> Workspace:
    from huntlab.workspace import Workspace

    given = _STATE["workspace"]
    return Workspace.find(Path(str(given)) if given else None)


def _params(items: list[str] | None) -> dict[str, str]:
    from huntlab.errors import InputError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"bad --param {item!r}", "Write it as NAME=VALUE")
        out[key.strip()] = value
    return out


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    ws: Annotated[Path | None, typer.Option("--workspace", "-w", help="Workspace folder.")] = None,
) -> None:
    _STATE["debug"] = debug
    _STATE["workspace"] = ws


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create.")] = Path("."),
    demo: Annotated[bool, typer.Option(help="Add the bundled hunting jobs.")] = False,
) -> None:
    """Create a workspace: huntlab.toml, jobs/, data/ and .huntlab/."""
    from huntlab.workspace import Workspace

    ws = Workspace.init(directory)
    if demo:
        from huntlab.demo import install_jobs

        install_jobs(ws)
    console().print(f"[green]workspace ready[/] at {ws.root}")


@app.command()
def sample(
    events: Annotated[int, typer.Option(help="Number of events to generate.")] = 200_000,
    dataset: Annotated[str, typer.Option(help="Managed dataset to write.")] = "events",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Generate realistic upstream telemetry into a managed dataset."""
    from huntlab.demo import load_sample

    n = load_sample(workspace(), events, dataset=dataset, seed=seed, progress=True)
    console().print(f"[green]wrote {n:,} events[/] to dataset '{dataset}'")


@app.command("jobs")
def jobs_list() -> None:
    """List the jobs in the workspace."""
    from rich.table import Table

    from huntlab.jobs.discover import list_jobs

    ws = workspace()
    t = Table(header_style="bold cyan")
    for col in ("job", "kind", "output", "file", "description"):
        t.add_column(col)
    for j in list_jobs(ws.jobs_dir):
        t.add_row(j.name, j.kind, j.output or "", j.path.name, j.description)
    console().print(t)


@app.command()
def run(
    job: Annotated[str, typer.Argument(help="Job name or path of a .sql/.py file.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE")] = None,
    engine: Annotated[str | None, typer.Option(help="duckdb (default) or spark.")] = None,
    show: Annotated[int, typer.Option(help="Rows of the result to print.")] = 20,
    no_write: Annotated[bool, typer.Option("--no-write", help="Do not write the output.")] = False,
) -> None:
    """Run a job: read inputs, compute, write the output atomically, record the run."""
    from huntlab.cli.render import arrow_table
    from huntlab.jobs.runner import run_job

    c = console()
    with c.status(f"running {job}") as st:
        res = run_job(
            workspace(),
            job,
            _params(param),
            engine,
            write=not no_write,
            status=st.update,
        )
    if show:
        c.print(arrow_table(res.table, show, title=f"{res.job} -> {res.output or '(not saved)'}"))
    ver = f" version {res.output_version}" if res.output_version is not None else ""
    c.print(
        f"[green]run {res.run_id} succeeded[/] in {res.seconds:.2f}s: "
        f"{res.rows_out:,} rows -> {res.output or '(not saved)'}{ver}"
    )
    for line in res.quarantined:
        c.print(f"[yellow]{line}[/]")
    if res.suppressed_groups is not None:
        c.print(
            f"public output: {res.suppressed_groups:,} group(s) with fewer than "
            f"{workspace().config.publish.k_anonymity} distinct clients suppressed"
        )


@app.command()
def runs(
    job: Annotated[str | None, typer.Argument(help="Only runs of this job.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 30,
) -> None:
    """List recent runs with status, timings, rows and lineage."""
    from rich.table import Table

    t = Table(header_style="bold cyan")
    for col in (
        "run",
        "job",
        "engine",
        "status",
        "started",
        "secs",
        "rows in",
        "rows out",
        "inputs",
        "outputs",
        "error",
    ):
        t.add_column(col)
    for r in workspace().store.list_runs(job, limit):
        colour = {"succeeded": "green", "failed": "red"}.get(r.status, "yellow")
        t.add_row(
            str(r.id),
            r.job,
            r.engine,
            f"[{colour}]{r.status}[/]",
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{r.duration_s:.2f}" if r.duration_s is not None else "",
            f"{r.rows_in:,}" if r.rows_in is not None else "",
            f"{r.rows_out:,}" if r.rows_out is not None else "",
            ", ".join(f"{k}@{v}" if v is not None else k for k, v in r.inputs.items()),
            ", ".join(f"{k}@{v}" for k, v in r.outputs.items()),
            (r.error or "")[:80],
        )
    console().print(t)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A Spark SQL statement.")],
    out: Annotated[str | None, typer.Option(help="Write to .csv, .jsonl or .parquet.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
    engine: Annotated[str | None, typer.Option(help="duckdb (default) or spark.")] = None,
) -> None:
    """Run an ad-hoc Spark SQL query over the workspace's datasets."""
    from huntlab.cli.render import arrow_table, write_table
    from huntlab.jobs.normalize import normalize_table
    from huntlab.jobs.runner import coerce_param

    eng = workspace().engine(engine)
    try:
        table = eng.sql(query, {k: coerce_param(v) for k, v in _params(param).items()})
        table = normalize_table(table)  # the same output types as a job run, whatever the engine
    finally:
        eng.close()
    if out:
        write_table(table, out)
        console().print(f"[green]wrote {table.num_rows:,} rows[/] to {out}")
    else:
        console().print(arrow_table(table, limit))


@app.command()
def shell(
    python: Annotated[bool, typer.Option("--python", help="Start in the Python shell.")] = False,
) -> None:
    """Interactive SQL shell (\\py switches to Python with a `spark` session)."""
    from huntlab.cli.shell import run_shell

    run_shell(workspace(), start_python=python)


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Workspace folder to create.")] = Path(
        "demo-ws"
    ),
    events: Annotated[int, typer.Option(help="Events to generate.")] = 300_000,
) -> None:
    """Create a workspace with sample telemetry, run the bundled hunting jobs, print findings."""
    from huntlab.demo import run_demo

    run_demo(directory, events, console())


from huntlab.cli import datasets as _datasets  # noqa: F401  (registers the subcommands)
from huntlab.cli import stream as _stream  # noqa: F401
from huntlab.cli import upstream as _upstream  # noqa: F401

# isort: split
from huntlab.cli import ml as _ml  # noqa: F401  (ml sorts before upstream; registered after it)


def main() -> None:
    """Entry point: every HuntlabError becomes one red line and exit code 1."""
    from huntlab.errors import HuntlabError

    try:
        app()  # standalone: usage errors print click's message and exit 2
    except HuntlabError as exc:
        if _STATE["debug"]:
            import traceback

            traceback.print_exc()
        _err_console().print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        _err_console().print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # the unexpected: one line, and a way to see more
        if _STATE["debug"]:
            raise
        _err_console().print(
            f"[bold red]internal error:[/] {exc.__class__.__name__}: {exc} "
            "(run with --debug for the traceback, and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)


def _err_console():
    from rich.console import Console

    return Console(stderr=True)
