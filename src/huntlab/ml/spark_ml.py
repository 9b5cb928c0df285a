"""URL models on Spark: score a champion with mapInArrow, train pyspark.ml logistic regression.

Every Arrow batch goes through the same `FeatureSpec.compute` (and, for scikit-learn models, the
same `score_table`) as the embedded path, so both engines featurize and score identically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from huntlab.errors import InputError
from huntlab.ml.features import FeatureSpec
from huntlab.ml.models import BENIGN, ModelInfo
from huntlab.ml.score import ScoreResult, default_threshold, score_table, write_scores

if TYPE_CHECKING:
    from huntlab.ml.registry import ModelRecord
    from huntlab.workspace import Workspace

SPARK_KIND = "spark_lr"
_MODELS: dict[str, Any] = {}  # per Python worker: unpickled models by key, loaded once


def _spark(ws: Workspace) -> Any:
    """The workspace's Spark engine (its shared session), whatever engine is configured."""
    return ws.engine("spark")


def _read(eng: Any, dataset: str, column: str) -> tuple[Any, list[str], str | None]:
    """The dataset as a DataFrame of the URL column plus known label/collection columns."""
    from huntlab.engines.spark import spark_errors
    from huntlab.engines.spark_sources import read_dataset

    with spark_errors(f"reading dataset '{dataset}'", eng.config):
        df, version = read_dataset(eng.spark, eng.workspace.store.get_dataset(dataset))
    if column not in df.columns:
        raise InputError(
            f"dataset '{dataset}' has no column '{column}'; it has {df.columns}",
            "Pass --column with the column holding URLs",
        )
    keep = [c for c in df.columns if c in ("label", "collection")]
    return df.select(df[column].cast("string").alias("url"), *keep), keep, version


def score_schema(classes: list[str], keep: list[str]) -> pa.Schema:
    """The scores' Arrow schema, as `score_table` builds it, plus the known columns."""
    fields = [
        pa.field("url", pa.string()),
        pa.field("predicted", pa.string()),
        pa.field("malicious_score", pa.float64()),
        pa.field("flagged", pa.bool_()),
    ]
    fields += [pa.field(f"p_{c}", pa.float64()) for c in classes]
    fields += [pa.field(f"known_{c}", pa.string()) for c in keep]
    return pa.schema(fields)


def _model_from(key: str, blob: Any) -> Any:
    """The model of a joblib artifact, unpickled once per Python worker."""
    if key not in _MODELS:
        import joblib

        data = blob.value if hasattr(blob, "value") else blob
        _MODELS[key] = joblib.load(io.BytesIO(data))
    return _MODELS[key]


def _ship(eng: Any, data: bytes) -> Any:
    """Broadcast the artifact once (classic Spark); over Spark Connect it rides in the closure."""
    if eng.connect:
        return data
    return eng.spark.sparkContext.broadcast(data)


def score_on_spark(
    ws: Workspace,
    rec: ModelRecord,
    dataset: str,
    output: str,
    *,
    column: str = "url",
    threshold: float | None = None,
    run_id: int | None = None,
) -> ScoreResult:
    """Score `dataset` on Spark with a registered model; write like the embedded path does."""
    from huntlab.engines.spark import spark_errors

    eng = _spark(ws)
    df, keep, version = _read(eng, dataset, column)
    thr = threshold if threshold is not None else default_threshold(rec)
    if rec.kind == SPARK_KIND:
        scored = _score_pipeline(ws, rec, df, keep, thr)
    else:
        scored = _score_sklearn(eng, ws, rec, df, keep, thr)
    with spark_errors(f"scoring '{dataset}' with {rec.ref}", eng.config):
        out = scored.toArrow()
    out = out.cast(score_schema(rec.params["classes"], keep))
    if out.num_rows == 0:
        raise InputError(f"dataset '{dataset}' is empty", "Load URLs into it first")
    return write_scores(ws, rec, out, output, {dataset: version}, run_id)


def _score_sklearn(eng: Any, ws: Workspace, rec: ModelRecord, df: Any, keep: list, thr: float):
    """mapInArrow: each Arrow batch scored by `score_table` with the shipped joblib artifact."""
    from huntlab.engines.spark_sources import spark_schema

    path = ws.root / rec.artifact
    if not path.is_file():
        raise InputError(f"artifact of {rec.ref} is missing at {path}", "Retrain the model")
    blob = _ship(eng, path.read_bytes())
    key = f"{ws.root}:{rec.ref}:{path.stat().st_mtime_ns}"
    schema = score_schema(rec.params["classes"], keep)

    def score_batches(batches: Any) -> Any:
        model = _model_from(key, blob)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            scored = score_table(model, batch.column(0), thr)
            for i, c in enumerate(keep, start=1):
                scored = scored.append_column(f"known_{c}", batch.column(i))
            yield from scored.cast(schema).to_batches()

    return df.mapInArrow(score_batches, spark_schema(schema))


# -- features on Spark ------------------------------------------------------------------------


def featurize(df: Any, spec: FeatureSpec, seed: int, keep: list[str]) -> Any:
    """Canonical text, registered domain, its split unit and lexical features, per Arrow batch."""
    from pyspark.ml.functions import array_to_vector

    from huntlab.engines.spark_sources import spark_schema

    schema = pa.schema(
        [
            pa.field("url", pa.string()),
            *[pa.field(c, pa.string()) for c in keep],
            pa.field("text", pa.string()),
            pa.field("reg_domain", pa.string()),
            pa.field("unit", pa.float64()),
            pa.field("lex", pa.list_(pa.float64())),
        ]
    )

    def features(batches: Any) -> Any:
        from huntlab.ml.splits import domain_unit

        for batch in batches:
            if batch.num_rows == 0:
                continue
            f = spec.compute(batch.column(0))
            doms = np.asarray(f.reg_domains.to_pylist(), dtype=object)
            lex = f.lexical.astype(np.float64)
            offsets = pa.array(np.arange(0, lex.size + 1, lex.shape[1]), pa.int32())
            cols = [batch.column(i).cast(pa.string()) for i in range(1 + len(keep))]
            cols += [
                pa.array(f.text, pa.string()),
                f.reg_domains.cast(pa.string()),
                pa.array(domain_unit(doms, seed), pa.float64()),
                pa.ListArray.from_arrays(offsets, pa.array(lex.ravel())),
            ]
            yield pa.RecordBatch.from_arrays(cols, schema=schema)

    out = df.mapInArrow(features, spark_schema(schema))
    return out.withColumn("lexv", array_to_vector("lex"))


# -- the pyspark.ml model -----------------------------------------------------------------------


@dataclass
class SparkUrlModel(ModelInfo):
    """A pyspark.ml PipelineModel with the FeatureSpec and classes it was trained with."""

    task: str
    spec: FeatureSpec
    classes_: list[str]
    seed: int = 7
    params: dict[str, Any] = field(default_factory=dict)
    pipeline: Any = None
    kind: str = SPARK_KIND
    artifact_suffix: str = ".spark"

    def save_artifact(self, path: Path) -> None:
        """The artifact folder: the saved PipelineModel and a joblib of spec, task, classes."""
        import joblib

        path.mkdir(parents=True, exist_ok=True)
        self.pipeline.write().overwrite().save(str(path / "pipeline"))
        meta = {"task": self.task, "spec": self.spec, "classes": self.classes_, "seed": self.seed}
        joblib.dump(meta, path / "meta.joblib")

    @classmethod
    def load(cls, path: Path) -> SparkUrlModel:
        """Read an artifact folder back (needs a running Spark session)."""
        import joblib
        from pyspark.ml import PipelineModel

        if not (path / "meta.joblib").is_file():
            raise InputError(f"Spark model artifact missing at {path}", "Retrain the model")
        meta = joblib.load(path / "meta.joblib")
        pipeline = PipelineModel.load(str(path / "pipeline"))
        return cls(meta["task"], meta["spec"], meta["classes"], meta["seed"], pipeline=pipeline)

    def probabilities(self, feats: Any) -> Any:
        """The pipeline's output with a `proba` array column in `classes_` order."""
        from pyspark.ml.functions import vector_to_array

        out = self.pipeline.transform(feats)
        return out.withColumn("proba", vector_to_array("probability"))


def _score_pipeline(ws: Workspace, rec: ModelRecord, df: Any, keep: list, thr: float) -> Any:
    """Score with a saved pyspark.ml model: same features, then its pipeline, same columns."""
    from pyspark.sql import functions as F

    model = SparkUrlModel.load(ws.root / rec.artifact)
    scored = model.probabilities(featurize(df, model.spec, model.seed, keep))
    ib = model.classes_.index(BENIGN)
    classes = F.array(*[F.lit(c) for c in model.classes_])
    score = 1.0 - F.col("proba")[ib]
    cols = [
        F.col("url"),
        F.element_at(classes, F.col("prediction").cast("int") + 1).alias("predicted"),
        score.alias("malicious_score"),
        (score >= F.lit(thr)).alias("flagged"),
        *[F.col("proba")[i].alias(f"p_{c}") for i, c in enumerate(model.classes_)],
        *[F.col(c).alias(f"known_{c}") for c in keep],
    ]
    return scored.select(*cols)
