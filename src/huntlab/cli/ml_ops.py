"""`huntlab ml score | retrain | install-jobs | cluster | clusters`: using registered models."""

from __future__ import annotations

from typing import Annotated

import typer

from huntlab.cli.main import console, workspace
from huntlab.cli.ml import _engine, _recorded, ml_app
from huntlab.errors import InputError


@ml_app.command()
def score(
    ref: Annotated[str, typer.Argument(help="NAME (its champion), NAME@VERSION or NAME@stage.")],
    data: Annotated[str, typer.Option(help="Dataset with URLs.")] = "urls",
    output: Annotated[str, typer.Option(help="Managed dataset for the scores.")] = "url_scores",
    column: Annotated[str, typer.Option(help="Column holding the URLs.")] = "url",
    threshold: Annotated[
        float | None,
        typer.Option(help="Flag at this P(malicious) (default: 1% FPR on validation benign)."),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="embedded (Arrow batches) or spark (mapInArrow).")
    ] = "embedded",
) -> None:
    """Score a dataset of URLs with a registered model and write the results as a dataset."""
    from huntlab.ml import registry
    from huntlab.ml.score import score_dataset

    name, version = registry.parse_ref(ref)
    on_spark = _engine(engine) == "spark"

    def go(ws, run_id):  # type: ignore[no-untyped-def]
        rec = registry.get(ws, name, version)
        with console().status(f"scoring {data} with {rec.ref}"):
            if on_spark:
                from huntlab.ml.spark_ml import score_on_spark

                res = score_on_spark(
                    ws, rec, data, output, column=column, threshold=threshold, run_id=run_id
                )
            else:
                res = score_dataset(
                    ws,
                    rec,
                    registry.load(ws, rec),
                    data,
                    output,
                    column=column,
                    threshold=threshold,
                    run_id=run_id,
                )
        return (rec, res), res.rows, res.rows, res.inputs, {output: res.version}

    job_params = {"model": ref, "data": data, "output": output, "engine": engine}
    rec, res = _recorded(f"ml.score:{name}", job_params, go, "spark" if on_spark else "sklearn")
    console().print(
        f"[green]scored {res.rows:,} URLs[/] with {rec.ref}: {res.flagged:,} flagged "
        f"-> '{output}' version {res.version}"
    )


@ml_app.command()
def retrain(
    name: Annotated[str, typer.Argument(help="Model name.")],
    data: Annotated[str, typer.Option(help="Current labeled data.")] = "urls",
    holdout: Annotated[
        str | None,
        typer.Option(help="Fixed evaluation dataset (default NAME_holdout, created once)."),
    ] = None,
    task: Annotated[str, typer.Option(help="multiclass or binary.")] = "multiclass",
    sample: Annotated[int | None, typer.Option(help="Train on a sample of N rows.")] = None,
    min_gain: Annotated[float, typer.Option(help="Required improvement to promote.")] = 0.002,
) -> None:
    """Train a challenger; promote it only if it beats the champion on the fixed holdout."""
    from huntlab.ml.retrain import record_decision
    from huntlab.ml.retrain import retrain as run_retrain

    def go(ws, run_id):  # type: ignore[no-untyped-def]
        with console().status(f"retraining {name}"):
            d = run_retrain(
                ws,
                name,
                data,
                holdout=holdout,
                task=task,
                sample=sample,
                min_gain=min_gain,
                run_id=run_id,
            )
        ver = record_decision(ws, d)
        return d, None, 1, {data: None, d.eval_dataset: d.eval_version}, {"model_decisions": ver}

    d = _recorded(f"ml.retrain:{name}", {"data": data, "task": task, "sample": sample}, go)
    colour = "green" if d.promoted else "yellow"
    word = "promoted" if d.promoted else "not promoted"
    console().print(f"[{colour}]{name}@{d.challenger} {word}[/]: {d.reason}")


@ml_app.command("install-jobs")
def install_jobs(
    model: Annotated[str, typer.Option(help="Model name.")] = "url_model",
    data: Annotated[str, typer.Option(help="Labeled data.")] = "urls",
) -> None:
    """Write jobs/retrain_MODEL.py: the retrain as a normal job (`huntlab run retrain_MODEL`)."""
    from huntlab.ml.retrain import install_retrain_job

    path = install_retrain_job(workspace(), model, data)
    console().print(f"[green]wrote[/] {path}; run it with `huntlab run retrain_{model}`")


@ml_app.command()
def cluster(
    data: Annotated[str, typer.Option(help="Dataset with url (and label) columns.")] = "urls",
    output: Annotated[str, typer.Option(help="Managed dataset of clusters.")] = "web_clusters",
    k: Annotated[int, typer.Option(help="K-means clusters.")] = 200,
    sample: Annotated[int | None, typer.Option(help="Use a sample of N URLs.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    model: Annotated[
        str | None,
        typer.Option(help="Compare with this model's per-URL flags (NAME or NAME@VERSION)."),
    ] = None,
    fair_model: Annotated[
        str | None,
        typer.Option(
            help="Train model NAME now without the held-back domains, then compare with it "
            "(a model trained on them would flatter itself)."
        ),
    ] = None,
) -> None:
    """Cluster hosts by URL features and shared kit paths; label clusters; report purity."""
    import json

    from huntlab.connectors.base import connector_for
    from huntlab.ml.cluster import cluster_hosts
    from huntlab.ml.train import feature_spec, read_labeled

    def go(ws, run_id):  # type: ignore[no-untyped-def]
        labeled = read_labeled(ws, data, sample, seed)
        spec, _ = feature_spec(ws)
        scores, thr = None, 0.5
        ref = model
        if fair_model:
            from huntlab.ml.cluster import held_back_domains
            from huntlab.ml.train import train_model

            doms = spec.compute(labeled.urls).reg_domains.to_pylist()
            with console().status(f"training {fair_model} without the held-back domains"):
                tr = train_model(
                    ws,
                    fair_model,
                    data,
                    sample=sample,
                    seed=seed,
                    exclude_domains=held_back_domains(doms, seed),
                    run_id=run_id,
                )
            ref = tr.record.ref
            console().print(f"trained {ref} without the clustering's held-back domains")
        if ref:
            from huntlab.ml import registry
            from huntlab.ml.score import default_threshold

            rec = registry.get(ws, *registry.parse_ref(ref))
            clf = registry.load(ws, rec)
            scores = clf.malicious_score(clf.predict_proba(labeled.urls))
            thr = default_threshold(rec)
        with console().status("clustering hosts"):
            res = cluster_hosts(
                labeled.urls, labeled.labels, spec, k=k, seed=seed, url_scores=scores, threshold=thr
            )
        ver = connector_for(ws.ensure_managed(output)).write(res.table, "overwrite", run_id=run_id)
        ws.store.touch_dataset(output)
        return res, len(labeled.labels), res.table.num_rows, labeled.versions, {output: ver}

    if model and fair_model:
        raise InputError(
            "--model and --fair-model both given", "Compare with one model: pick one of them"
        )
    res = _recorded(
        "ml.cluster", {"data": data, "k": k, "sample": sample, "fair_model": fair_model}, go
    )
    console().print(
        f"[green]{res.table.num_rows:,} clusters[/] -> '{output}'; k-means purity {res.purity:.4f}"
    )
    console().print("held-back labels: " + json.dumps(res.held_back, indent=1))


@ml_app.command()
def clusters(
    data: Annotated[str, typer.Option(help="Clusters dataset.")] = "web_clusters",
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    min_confidence: Annotated[float, typer.Option(help="Only labels at least this sure.")] = 0.6,
) -> None:
    """Show the largest suspicious (non-benign) clusters."""
    from huntlab.cli.render import arrow_table
    from huntlab.workspace import check_name

    view = '"' + check_name(data).replace('"', '""') + '"'  # an identifier, quoted, never a value
    eng = workspace().engine("duckdb")
    try:
        eng.register([data])
        rel = eng.con.execute(
            "SELECT cluster_id, method, size, n_urls, label, round(confidence, 3) AS confidence, "
            f"members_sample, evidence FROM {view} "
            "WHERE label IS NOT NULL AND label <> 'benign' AND confidence >= $c "
            "ORDER BY size DESC LIMIT $n",
            {"c": min_confidence, "n": limit},
        ).to_arrow_table()
    finally:
        eng.close()
    console().print(arrow_table(rel, limit, title="largest suspicious clusters"))
