"""The model registry: versions with params, metrics, data lineage, joblib artifact, stage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from huntlab.catalog.schema import models
from huntlab.errors import EngineError, InputError
from huntlab.workspace import check_name

if TYPE_CHECKING:
    from huntlab.ml.models import UrlClassifier
    from huntlab.workspace import Workspace

STAGES = ("champion", "challenger", "archived")


@dataclass
class ModelRecord:
    """One registered model version."""

    name: str
    version: int
    kind: str
    task: str
    stage: str
    artifact: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    run_id: int | None = None
    created_at: dt.datetime | None = None

    @property
    def ref(self) -> str:
        """NAME@VERSION."""
        return f"{self.name}@{self.version}"


def _record(row: Any) -> ModelRecord:
    return ModelRecord(**{k: row[k] for k in ModelRecord.__dataclass_fields__})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def models_dir(ws: Workspace) -> Path:
    """Where model artifacts live: the workspace's models/ folder."""
    return ws.root / "models"


def register(
    ws: Workspace,
    name: str,
    model: UrlClassifier,
    *,
    metrics: dict[str, Any],
    training_data: dict[str, Any],
    run_id: int | None = None,
    notes: str = "",
) -> ModelRecord:
    """Save the artifact and add the next version of `name` as a challenger."""
    import joblib

    check_name(name, "model")
    with ws.store.engine.begin() as conn:
        q = select(func.max(models.c.version)).where(models.c.name == name)
        version = int(conn.execute(q).scalar() or 0) + 1
        suffix = getattr(model, "artifact_suffix", ".joblib")
        path = models_dir(ws) / name / f"v{version}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if hasattr(model, "save_artifact"):
            model.save_artifact(path)  # e.g. a Spark PipelineModel folder
        else:
            joblib.dump(model, path, compress=3)
        now = _now()
        conn.execute(
            insert(models).values(
                name=name,
                version=version,
                kind=model.kind,
                task=model.task,
                params=model.describe(),
                metrics=metrics,
                training_data=training_data,
                artifact=str(path.relative_to(ws.root)),
                stage="challenger",
                notes=notes,
                run_id=run_id,
                created_at=now,
                updated_at=now,
            )
        )
    return get(ws, name, version)


def list_models(ws: Workspace, name: str | None = None) -> list[ModelRecord]:
    """Every version (of one model), newest first."""
    q = select(models).order_by(models.c.name, models.c.version.desc())
    if name:
        q = q.where(models.c.name == name)
    with ws.store.engine.connect() as conn:
        return [_record(r) for r in conn.execute(q).mappings().all()]


def get(ws: Workspace, name: str, version: int | str | None = None) -> ModelRecord:
    """A version by number, or by stage ('champion'), or the champion else the newest."""
    versions = list_models(ws, name)
    if not versions:
        known = sorted({m.name for m in list_models(ws)})
        raise InputError(
            f"model '{name}' not found; known: {', '.join(known) or '(none)'}",
            "Train one with `huntlab ml train NAME --data DATASET`",
        )
    if version is None:
        champ = [m for m in versions if m.stage == "champion"]
        return champ[0] if champ else versions[0]
    if isinstance(version, str) and version in STAGES:
        found = [m for m in versions if m.stage == version]
    else:
        found = [m for m in versions if str(m.version) == str(version)]
    if not found:
        have = ", ".join(f"{m.version} ({m.stage})" for m in versions)
        raise InputError(f"model '{name}' has no version {version}; it has {have}")
    return found[0]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`name`, `name@3` or `name@champion`."""
    name, _, version = ref.partition("@")
    return name, version or None


def load(ws: Workspace, record: ModelRecord) -> UrlClassifier:
    """The fitted model of a registered version."""
    import joblib

    if record.kind == "spark_lr":
        raise EngineError(
            f"model {record.ref} is a pyspark.ml pipeline ({record.kind}) and scores only on Spark",
            "Run it with --engine spark",
        )
    path = ws.root / record.artifact
    if not path.is_file():
        raise InputError(
            f"artifact of {record.ref} is missing at {path}",
            "Retrain the model, or restore the workspace's models/ folder",
        )
    return joblib.load(path)


def promote(ws: Workspace, name: str, version: int | str, reason: str) -> ModelRecord:
    """Make a version the champion; the previous champion is archived. The reason is recorded."""
    target = get(ws, name, version)
    with ws.store.engine.begin() as conn:
        conn.execute(
            update(models)
            .where(models.c.name == name, models.c.stage == "champion")
            .values(stage="archived", updated_at=_now())
        )
        conn.execute(
            update(models)
            .where(models.c.name == name, models.c.version == target.version)
            .values(stage="champion", notes=_append(target.notes, reason), updated_at=_now())
        )
    return get(ws, name, target.version)


def annotate(ws: Workspace, name: str, version: int, note: str) -> None:
    """Record a decision about a version (e.g. why a challenger was not promoted)."""
    rec = get(ws, name, version)
    with ws.store.engine.begin() as conn:
        conn.execute(
            update(models)
            .where(models.c.name == name, models.c.version == version)
            .values(notes=_append(rec.notes, note), updated_at=_now())
        )


def _append(notes: str, note: str) -> str:
    stamp = _now().strftime("%Y-%m-%d %H:%M:%S")
    return (notes + "\n" if notes else "") + f"[{stamp}] {note}"
