"""Train a pyspark.ml logistic regression on hashed n-grams and lexical features, register it.

The split, the metrics, the thresholds and the report are the embedded path's own (splits.py's
domain hash inside the featurizing mapInArrow, metrics.py on the collected test scores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from huntlab.errors import InputError
from huntlab.ml.models import BENIGN
from huntlab.ml.spark_ml import SparkUrlModel, _read, _spark, featurize
from huntlab.ml.splits import SPLITS

if TYPE_CHECKING:
    from huntlab.ml.train import TrainResult
    from huntlab.workspace import Workspace

DEFAULTS = {"reg": 1e-4, "max_iter": 60, "n_hash": 2**18}


def pipeline(params: dict[str, Any]) -> Any:
    """Char 3-grams and word tokens hashed, lexical features scaled, one LogisticRegression."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import (
        HashingTF,
        NGram,
        RegexTokenizer,
        StandardScaler,
        VectorAssembler,
    )

    n_hash = int(params["n_hash"])
    stages = [
        RegexTokenizer(
            inputCol="text", outputCol="chars", pattern=".", gaps=False, toLowercase=False
        ),
        NGram(n=3, inputCol="chars", outputCol="grams"),
        HashingTF(inputCol="grams", outputCol="gram_tf", numFeatures=n_hash, binary=True),
        RegexTokenizer(
            inputCol="text",
            outputCol="tokens",
            pattern="[a-z0-9]{2,}",
            gaps=False,
            toLowercase=False,
        ),
        HashingTF(inputCol="tokens", outputCol="tok_tf", numFeatures=n_hash >> 2, binary=True),
        StandardScaler(inputCol="lexv", outputCol="lex_scaled", withMean=False, withStd=True),
        VectorAssembler(inputCols=["gram_tf", "tok_tf", "lex_scaled"], outputCol="features"),
        LogisticRegression(
            featuresCol="features",
            labelCol="y_ix",
            weightCol="w",
            family="multinomial",
            regParam=float(params["reg"]),
            elasticNetParam=0.0,
            maxIter=int(params["max_iter"]),
            standardization=False,
        ),
    ]
    return Pipeline(stages=stages)


def _labeled(df: Any, task: str, classes: list[str]) -> Any:
    """Task label, its index in `classes` and a balanced class weight, as sklearn's 'balanced'."""
    from pyspark.sql import functions as F

    y = F.col("label") if task == "multiclass" else F.when(F.col("label") == BENIGN, BENIGN)
    if task == "binary":
        y = y.otherwise("malicious")
    df = df.withColumn("y", y)
    ix = F.array_position(F.array(*[F.lit(c) for c in classes]), F.col("y")) - 1
    return df.withColumn("y_ix", ix.cast("double"))


def _weights(train: Any, classes: list[str]) -> Any:
    """Rows weighted n / (k * n_class), so rare classes count as much as benign."""
    from pyspark.sql import functions as F

    counts = {r["y"]: r["count"] for r in train.groupBy("y").count().collect()}
    n, k = sum(counts.values()), len(classes)
    w = F.create_map(*[x for c in classes for x in (F.lit(c), F.lit(n / (k * counts[c])))])
    return train.withColumn("w", w[F.col("y")])


def _collect(model: SparkUrlModel, part: Any) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and original labels of one split part, on the driver for metrics.py."""
    t = model.probabilities(part).select("label", "proba").toArrow()
    proba = np.asarray(t["proba"].to_pylist(), dtype=np.float64).reshape(t.num_rows, -1)
    return proba, np.asarray(t["label"].to_pylist(), dtype=object)


def train_on_spark(
    ws: Workspace,
    name: str,
    dataset: str,
    *,
    task: str = "multiclass",
    split: str = "grouped",
    seed: int = 7,
    sample: int | None = None,
    params: dict[str, Any] | None = None,
    run_id: int | None = None,
) -> TrainResult:
    """Featurize on Spark, split by domain hash, fit, evaluate like the embedded path, register."""
    from pyspark.sql import functions as F

    from huntlab.ml import registry
    from huntlab.ml.evaluate import model_report
    from huntlab.ml.metrics import evaluate
    from huntlab.ml.train import TrainResult, _brief, feature_spec, val_thresholds

    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}", f"Use one of: {', '.join(SPLITS)}")
    p = {**DEFAULTS, **(params or {})}
    eng = _spark(ws)
    df, keep, version = _read(eng, dataset, "url")
    if "label" not in keep:
        raise InputError(f"dataset '{dataset}' has no label column", "Load labeled URLs first")
    df = df.filter(F.col("label").isNotNull())
    if sample:
        df = df.sample(fraction=min(1.0, sample / max(df.count(), 1)), seed=seed)
    spec, pop_versions = feature_spec(ws)
    classes = [BENIGN, "malicious"]
    feats = featurize(df, spec, seed, keep)
    if split == "random":
        feats = feats.withColumn("unit", F.rand(seed))
    if task == "multiclass":
        classes = sorted(r["label"] for r in feats.select("label").distinct().collect())
    elif task != "binary":
        raise InputError(f"unknown task {task!r}", "Use multiclass or binary")
    feats = _labeled(feats, task, classes).cache()
    try:
        train = _weights(feats.filter("unit >= 0.4"), classes)
        model = SparkUrlModel(task, spec, classes, seed, params=p)
        model.pipeline = pipeline(p).fit(train)
        val_p, val_y = _collect(model, feats.filter("unit >= 0.2 AND unit < 0.4"))
        test_p, test_y = _collect(model, feats.filter("unit < 0.2"))
        rows = {"train": train.count(), "validation": len(val_y), "test": len(test_y)}
    finally:
        feats.unpersist()
    val_m = evaluate(model, val_p, val_y)  # type: ignore[arg-type]
    thresholds = val_thresholds(model, val_p, val_y)  # type: ignore[arg-type]
    test_m = evaluate(model, test_p, test_y, thresholds)  # type: ignore[arg-type]
    metrics = {
        "split": split,
        "engine": "spark",
        "chosen_by": "single candidate (pyspark.ml)",
        "validation": {model.kind: _brief(val_m)},
        "test": test_m,
        "thresholds": thresholds,
        "rows": rows,
    }
    lineage = {dataset: version, **pop_versions}
    rec = registry.register(ws, name, model, metrics=metrics, training_data=lineage, run_id=run_id)  # type: ignore[arg-type]
    y_bin = (test_y != BENIGN).astype(int)
    report = model_report(ws, rec, test_m, {model.kind: (y_bin, model.malicious_score(test_p))})
    return TrainResult(rec, {model.kind: val_m}, test_m, report)
