"""The retrain job: train a challenger on current data, promote it only if it beats the champion."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from huntlab.connectors.base import connector_for
from huntlab.ml import registry
from huntlab.ml.metrics import evaluate
from huntlab.ml.splits import domain_unit
from huntlab.ml.train import primary, read_labeled, train_model

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

HOLDOUT_SHARE = 0.2


@dataclass
class Decision:
    """The outcome of one retrain: who was compared on what, and why the champion is who it is."""

    model: str
    challenger: int
    champion: int | None
    metric: str
    challenger_score: float
    champion_score: float | None
    promoted: bool
    reason: str
    eval_dataset: str
    eval_version: str | None

    def as_table(self) -> pa.Table:
        """One row, for the model_decisions dataset."""
        row = {**self.__dict__, "decided_at": dt.datetime.now(dt.UTC)}
        return pa.Table.from_pylist([row])


def ensure_holdout(ws: Workspace, dataset: str, holdout: str, seed: int) -> None:
    """Create the fixed evaluation set once: every row of the domains hashed into the holdout."""
    if ws.store.has_dataset(holdout) and connector_for(ws.store.get_dataset(holdout)).version():
        return
    from huntlab.ml.domains import registered_domains

    table = connector_for(ws.store.get_dataset(dataset)).read()
    doms = np.asarray(registered_domains(table["url"]).to_pylist(), dtype=object)
    mask = domain_unit(doms, seed) < HOLDOUT_SHARE
    out = table.filter(pa.array(mask)).append_column("reg_domain", pa.array(doms[mask]))
    connector_for(ws.ensure_managed(holdout)).write(out, "overwrite")


def _score_on(ws: Workspace, rec: registry.ModelRecord, eval_ds: str) -> dict[str, Any]:
    model = registry.load(ws, rec)
    data = read_labeled(ws, eval_ds)
    return evaluate(model, model.predict_proba(data.urls), data.labels)


def retrain(
    ws: Workspace,
    name: str,
    dataset: str = "urls",
    *,
    holdout: str | None = None,
    task: str = "multiclass",
    seed: int = 7,
    sample: int | None = None,
    min_gain: float = 0.002,
    run_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> Decision:
    """Train a challenger (never on the holdout's domains), compare on the holdout, decide."""
    holdout = holdout or f"{name}_holdout"
    ensure_holdout(ws, dataset, holdout, seed)
    hold_conn = connector_for(ws.store.get_dataset(holdout))
    hold_names = hold_conn.schema().names
    excluded: set[str] = set()
    if "reg_domain" in hold_names:
        excluded = set(hold_conn.read(columns=["reg_domain"])["reg_domain"].to_pylist())
    res = train_model(
        ws,
        name,
        dataset,
        task=task,
        seed=seed,
        sample=sample,
        params=params,
        exclude_domains=excluded,
        run_id=run_id,
    )
    chall = res.record
    champs = [m for m in registry.list_models(ws, name) if m.stage == "champion"]
    metric = "macro_f1" if task == "multiclass" else "average_precision"
    c_score = primary(_score_on(ws, chall, holdout), task)
    if not champs:
        promoted, champ_ver, champ_score = True, None, None
        reason = f"no champion yet; {chall.ref} {metric} {c_score:.4f} on {holdout}"
    else:
        champ = champs[0]
        champ_ver = champ.version
        champ_score = primary(_score_on(ws, champ, holdout), task)
        promoted = c_score > champ_score + min_gain
        verb = "beats" if promoted else "does not beat"
        reason = (
            f"{chall.ref} {verb} champion {champ.ref} on {holdout}: {metric} "
            f"{c_score:.4f} vs {champ_score:.4f} (required gain {min_gain})"
        )
    if promoted:
        registry.promote(ws, name, chall.version, "retrain: " + reason)
    else:
        registry.annotate(ws, name, chall.version, "retrain: kept as challenger: " + reason)
    return Decision(
        name,
        chall.version,
        champ_ver,
        metric,
        c_score,
        champ_score,
        promoted,
        reason,
        holdout,
        hold_conn.version(),
    )


def record_decision(
    ws: Workspace, decision: Decision, output: str = "model_decisions"
) -> str | None:
    """Append the decision to a managed dataset, so decisions are queryable like any data."""
    version = connector_for(ws.ensure_managed(output)).write(decision.as_table(), "append")
    ws.store.touch_dataset(output)
    return version


RETRAIN_JOB = '''"""Retrain the URL model on current data; promote only if it beats the champion."""

from pathlib import Path

from huntlab import job


@job(output="model_decisions", mode="append", inputs=[],
     params={{"model": "{model}", "data": "{data}", "task": "multiclass", "sample": "0"}})
def retrain_{model}(params):
    """Train a challenger and promote it only if it beats the champion on the fixed holdout."""
    from huntlab.ml.retrain import retrain
    from huntlab.workspace import Workspace

    ws = Workspace(Path(__file__).resolve().parents[1])
    decision = retrain(ws, str(params["model"]), str(params["data"]),
                       task=str(params["task"]), sample=int(params["sample"]) or None)
    return decision.as_table()
'''


def install_retrain_job(ws: Workspace, model: str, data: str) -> str:
    """Write jobs/retrain_MODEL.py, a normal job that `huntlab run` (or a scheduler) runs."""
    from huntlab.workspace import check_name

    check_name(model, "model")
    check_name(data)
    path = ws.jobs_dir / f"retrain_{model}.py"
    path.write_text(RETRAIN_JOB.format(model=model, data=data), encoding="utf-8")
    return str(path)
