"""Run one query over one dataset on Spark (local[2]) and on the embedded engine."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from huntlab.jobs.normalize import normalize_table
from huntlab.workspace import Workspace


def spark_of(ws: Workspace) -> Workspace:
    """The same workspace opened with the spark engine on local[2]."""
    cfg = ws.config.model_copy(deep=True)
    cfg.engine.type, cfg.engine.master, cfg.engine.shuffle_partitions = "spark", "local[2]", 4
    return Workspace(ws.root, cfg)


def on_both(ws: Workspace, dataset: str, query: str) -> tuple[Any, pa.Table, pa.Table]:
    """(Spark partitions of the dataset, the result on Spark, the result on DuckDB)."""
    spark_engine = spark_of(ws).engine()
    try:
        spark_engine.register([dataset])
        partitions = spark_engine.dataframe(dataset).rdd.getNumPartitions()
        on_spark = normalize_table(spark_engine.sql(query))
    finally:
        spark_engine.close()
    duck = ws.engine("duckdb")
    try:
        duck.register([dataset])
        embedded = normalize_table(duck.sql(query))
    finally:
        duck.close()
    return partitions, on_spark, embedded
