"""`huntlab ml ...`: load labeled URLs, train, evaluate, register, promote, score, cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from huntlab.cli.main import app, console, workspace

ml_app = typer.Typer(
    help="Machine learning: URL classifiers, model registry, web clusters.", no_args_is_help=True
)
app.add_typer(ml_app, name="ml")

DEFAULT_SOURCE = "../shared/data/urls"


def _list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _recorded(job: str, params: dict, fn, engine: str = "sklearn"):  # type: ignore[no-untyped-def]
    """Run `fn(ws, run_id)` as a recorded run (status, timings, lineage) in the runs table."""
    ws = workspace()
    run_id = ws.store.start_run(job, engine, {k: str(v) for k, v in params.items()})
    try:
        result, rows_in, rows_out, inputs, outputs = fn(ws, run_id)
    except BaseException as exc:
        ws.store.finish_run(run_id, status="failed", error=str(exc) or exc.__class__.__name__)
        raise
    ws.store.finish_run(
        run_id,
        status="succeeded",
        rows_in=rows_in,
        rows_out=rows_out,
        inputs=inputs,
        outputs=outputs,
    )
    return result


def _engine(name: str) -> str:
    """'spark', or 'embedded' for the embedded engine (duckdb is accepted as its name)."""
    from huntlab.errors import InputError

    if name in ("embedded", "duckdb"):
        return "embedded"
    if name != "spark":
        raise InputError(f"unknown engine {name!r} for ml", "Use --engine embedded or spark")
    return name


@ml_app.command("load-urls")
def load_urls(
    source: Annotated[Path, typer.Option(help="The shared data's urls/ folder.")] = Path(
        DEFAULT_SOURCE
    ),
    output: Annotated[str, typer.Option(help="Managed dataset of labeled URLs.")] = "urls",
    collections: Annotated[
        str | None,
        typer.Option(help="Comma list: iscx2016, esdaung2021, phishstorm2014 (default all)."),
    ] = None,
    popular: Annotated[str, typer.Option(help="Dataset for the Tranco ranks.")] = "popular_domains",
    sample: Annotated[int | None, typer.Option(help="Load a random sample of N URLs.")] = None,
) -> None:
    """Load the labeled URL collections and the popular-domain list into managed datasets."""
    from huntlab.ml.loading import load_shared_urls

    ws = workspace()
    counts = load_shared_urls(ws, source, output, _list(collections), popular, sample)
    for name, n in counts.items():
        console().print(f"[green]loaded {n:,} rows[/] into '{name}'")


@ml_app.command()
def train(
    name: Annotated[str, typer.Argument(help="Model name (versions are added under it).")],
    data: Annotated[str, typer.Option(help="Dataset with url and label columns.")] = "urls",
    task: Annotated[str, typer.Option(help="multiclass or binary.")] = "multiclass",
    kinds: Annotated[
        str,
        typer.Option(
            help="Candidates: ngram_linear, lexical_gbt, blend, balanced_lr, balanced_blend."
        ),
    ] = "ngram_linear,lexical_gbt,blend,balanced_lr,balanced_blend",
    split: Annotated[
        str, typer.Option(help="grouped (by registered domain) or random.")
    ] = "grouped",
    sample: Annotated[int | None, typer.Option(help="Train on a random sample of N rows.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    promote: Annotated[bool, typer.Option(help="Make it the champion right away.")] = False,
    engine: Annotated[
        str, typer.Option(help="embedded (scikit-learn) or spark (pyspark.ml LR, kind spark_lr).")
    ] = "embedded",
) -> None:
    """Train candidates, choose the best on validation, evaluate on test, register a version."""
    from huntlab.ml import registry
    from huntlab.ml.train import train_model

    params = {
        "data": data,
        "task": task,
        "kinds": kinds,
        "split": split,
        "sample": sample,
        "seed": seed,
    }

    def go(ws, run_id):  # type: ignore[no-untyped-def]
        with console().status(f"training {name} on {data}"):
            res = (
                _train(ws, run_id)
                if on_spark
                else train_model(
                    ws,
                    name,
                    data,
                    task=task,
                    kinds=_list(kinds),
                    split=split,
                    seed=seed,
                    sample=sample,
                    run_id=run_id,
                )
            )
        if promote:
            res.record = registry.promote(
                ws, name, res.record.version, "promoted at training (--promote)"
            )
        t = res.test
        return res, t["n"], None, res.record.training_data, {}

    on_spark = _engine(engine) == "spark"

    def _train(ws, run_id):  # type: ignore[no-untyped-def]
        from huntlab.ml.spark_train import train_on_spark

        return train_on_spark(
            ws, name, data, task=task, split=split, seed=seed, sample=sample, run_id=run_id
        )

    res = _recorded(f"ml.train:{name}", params, go, "spark" if on_spark else "sklearn")
    _print_result(res)


def _print_result(res) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    t = Table(
        "candidate",
        "val macro F1",
        "val ROC-AUC",
        "val recall@1%FPR",
        header_style="bold cyan",
        title="validation",
    )
    for k, m in res.candidates.items():
        t.add_row(
            k,
            f"{m['macro_f1']:.4f}",
            f"{m.get('roc_auc', float('nan')):.4f}",
            f"{m.get('recall_at_0.01_fpr', float('nan')):.4f}",
        )
    c = console()
    c.print(t)
    m = res.test
    c.print(
        f"[green]registered {res.record.ref}[/] ({res.record.kind}, {res.record.stage}): "
        f"test macro F1 {m['macro_f1']:.4f}, ROC-AUC {m.get('roc_auc', float('nan')):.4f}, "
        f"recall@1%FPR {m.get('recall_at_0.01_fpr', float('nan')):.4f}, "
        f"recall@0.1%FPR {m.get('recall_at_0.001_fpr', float('nan')):.4f}"
    )
    if res.report:
        c.print(f"report: {res.report}")


@ml_app.command("evaluate")
def evaluate_cmd(
    data: Annotated[str, typer.Option(help="Dataset with url, label (and collection).")] = "urls",
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    sample: Annotated[int | None, typer.Option(help="Evaluate on a sample of N rows.")] = None,
    kinds: Annotated[
        str, typer.Option(help="Model kinds.")
    ] = "ngram_linear,lexical_gbt,blend,balanced_lr,balanced_blend",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    cross: Annotated[bool, typer.Option(help="Also leave-one-collection-out.")] = True,
) -> None:
    """Grouped and random splits plus cross-collection; writes report.md and PNGs."""
    from huntlab.ml.evaluate import full_evaluation, reports_dir
    from huntlab.ml.train import feature_spec, read_labeled

    ws = workspace()
    labeled = read_labeled(ws, data, sample, seed)
    spec, _ = feature_spec(ws)
    folder = out or reports_dir(ws) / f"evaluation_{data}"
    full_evaluation(
        labeled,
        spec,
        folder,
        kinds=_list(kinds),
        seed=seed,
        cross_collection=cross,
        say=console().print,
    )
    console().print(f"[green]report[/]: {folder / 'report.md'}")


@ml_app.command("models")
def models_cmd(name: Annotated[str | None, typer.Argument(help="Only this model.")] = None) -> None:
    """List registered model versions with stage and headline test metrics."""
    from rich.table import Table

    from huntlab.ml.registry import list_models

    t = Table(header_style="bold cyan")
    for col in (
        "model",
        "version",
        "stage",
        "kind",
        "task",
        "test macro F1",
        "test ROC-AUC",
        "trained on",
        "created",
    ):
        t.add_column(col)
    for m in list_models(workspace(), name):
        test = m.metrics.get("test", {})
        colour = {"champion": "green", "archived": "dim"}.get(m.stage, "yellow")
        t.add_row(
            m.name,
            str(m.version),
            f"[{colour}]{m.stage}[/]",
            m.kind,
            m.task,
            _num(test.get("macro_f1")),
            _num(test.get("roc_auc")),
            ", ".join(f"{k}@{v}" for k, v in m.training_data.items()),
            m.created_at.strftime("%Y-%m-%d %H:%M") if m.created_at else "",
        )
    console().print(t)


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


@ml_app.command()
def show(ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@champion.")]) -> None:
    """Show one model version: parameters, metrics, lineage, artifact, decisions."""
    import json

    from rich.table import Table

    from huntlab.ml.registry import get, parse_ref

    name, version = parse_ref(ref)
    m = get(workspace(), name, version)
    c = console()
    c.print(f"[bold]{m.ref}[/] {m.kind} ({m.task}) stage [bold]{m.stage}[/]")
    c.print(f"artifact: {m.artifact}   run: {m.run_id}")
    c.print(f"training data: {m.training_data}")
    c.print("params: " + json.dumps(m.params, default=str))
    test = m.metrics.get("test", {})
    heads = (
        "n",
        "macro_f1",
        "roc_auc",
        "average_precision",
        "recall_at_0.01_fpr",
        "recall_at_0.001_fpr",
    )
    c.print(
        "test: "
        + ", ".join(f"{k} {_num(test[k]) if k != 'n' else test[k]}" for k in heads if k in test)
    )
    t = Table(
        "class",
        "precision",
        "recall",
        "F1",
        "n",
        header_style="bold cyan",
        title=f"test, {m.metrics.get('split', '')} split",
    )
    for cls, v in test.get("per_class", {}).items():
        t.add_row(cls, _num(v["precision"]), _num(v["recall"]), _num(v["f1"]), str(v["n"]))
    c.print(t)
    for k, v in m.metrics.get("validation", {}).items():
        c.print(
            f"validation {k}: macro F1 {_num(v.get('macro_f1'))}, ROC-AUC {_num(v.get('roc_auc'))}"
        )
    for k, v in test.items():
        if k.startswith("at_val_fpr_"):
            c.print(
                f"threshold {v['threshold']:.4f} ({k.removeprefix('at_val_fpr_')} FPR on "
                f"validation): test FPR {v['fpr']:.4f}, recall {v['recall']:.4f}"
            )
    if m.notes:
        c.print("decisions:\n" + m.notes)


@ml_app.command("promote")
def promote_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to make the champion.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "promoted by hand",
) -> None:
    """Make a version the champion (the previous champion is archived)."""
    from huntlab.errors import InputError
    from huntlab.ml.registry import parse_ref, promote

    name, version = parse_ref(ref)
    if version is None:
        raise InputError(f"no version in {ref!r}", "Write NAME@VERSION, e.g. url_model@2")
    m = promote(workspace(), name, version, reason)
    console().print(f"[green]{m.ref} is now the champion[/]")


from huntlab.cli import ml_ops as _ml_ops  # noqa: E402,F401  (score, retrain, cluster)
