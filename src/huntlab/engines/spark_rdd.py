"""Map-reduce jobs on Spark: the same `Records` pipeline, its steps replayed on an RDD."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from huntlab.errors import JobError
from huntlab.jobs.mapreduce import WIDE_OPS, Records, Step, _freeze, _to_table

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _row_reader(ts_columns: tuple[str, ...]) -> Any:
    """Spark Row -> dict as the embedded engine gives it (timestamps tz-aware UTC)."""

    def to_dict(row: Any) -> dict[str, Any]:
        rec = row.asDict(recursive=True)
        for c in ts_columns:
            v = rec[c]
            if v is not None:
                rec[c] = _EPOCH + dt.timedelta(microseconds=v)
        return rec

    return to_dict


def records_of(df: Any) -> SparkRecords:
    """Records over a Spark DataFrame, one dict per row, timestamp columns as UTC datetimes."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    ts = tuple(
        f.name
        for f in df.schema.fields
        if isinstance(f.dataType, (TimestampType, TimestampNTZType))
    )
    # Microseconds since the epoch cross to Python unchanged, whatever the workers' time zone.
    cols = [F.unix_micros(F.col(c).cast("timestamp")).alias(c) if c in ts else F.col(c)
            for c in df.columns]  # fmt: skip
    rdd = df.select(*cols).rdd.map(_row_reader(ts))
    return SparkRecords(rdd, ())


def _replay(rdd: Any, step: Step) -> Any:
    """One huntlab step as the equivalent RDD transformation."""
    op, fn = step
    if op == "map":
        return rdd.map(fn)
    if op == "flatMap":
        return rdd.flatMap(fn)
    if op == "filter":
        return rdd.filter(fn)
    if op == "mapPartitions":
        return rdd.mapPartitions(fn)
    if op == "reduceByKey":
        return rdd.reduceByKey(fn)
    if op == "combineByKey":
        return rdd.combineByKey(*fn)
    if op == "groupByKey":
        return rdd.groupByKey().mapValues(list)
    if op == "distinct":  # dict records are not hashable: key them as the embedded engine does
        return rdd.map(lambda r: (_freeze(r), r)).reduceByKey(lambda a, _b: a).values()
    raise ValueError(f"unknown map-reduce step {op!r}")


class SparkRecords(Records):
    """A Records pipeline whose actions run on a Spark RDD instead of local worker processes."""

    def __init__(self, rdd: Any, steps: tuple[Step, ...]) -> None:
        self._rdd, self._steps = rdd, steps
        self.parallelism, self.progress = rdd.getNumPartitions(), None

    def _then(self, op: str, fn: Any = None) -> SparkRecords:
        for f in fn if isinstance(fn, tuple) else () if fn is None else (fn,):
            if not callable(f):
                raise JobError(f"{op} needs a function, got {type(f).__name__}")
        return SparkRecords(self._rdd, (*self._steps, Step(op, fn)))

    def rdd(self) -> Any:
        """The pipeline as a PySpark RDD (for RDD operations huntlab's API lacks)."""
        rdd = self._rdd
        for step in self._steps:
            rdd = _replay(rdd, step)
        return rdd

    def collect(self) -> list[Any]:
        from huntlab.engines.spark import spark_errors

        with spark_errors("map-reduce job"):
            return self.rdd().collect()

    def count(self) -> int:
        from huntlab.engines.spark import spark_errors

        with spark_errors("map-reduce job"):
            return self.rdd().count()

    def take(self, n: int) -> list[Any]:
        from huntlab.engines.spark import spark_errors

        if n <= 0:
            return []
        with spark_errors("map-reduce job"):
            return self.rdd().take(n)

    def to_arrow(self, names: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        return _to_table(self.collect(), names, schema)

    @property
    def has_shuffle(self) -> bool:
        """Whether the pipeline has a wide step (a shuffle on Spark)."""
        return any(s.op in WIDE_OPS for s in self._steps)
