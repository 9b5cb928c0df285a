"""The Apache Spark engine: the same jobs, unchanged, on local[N], a standalone cluster or Connect.

SQL jobs run as written through `spark.sql` with named parameters bound; Python jobs get real
PySpark DataFrames; map-reduce jobs replay their steps on RDDs. Spark's out-of-memory and Python
worker failures become one-line errors that say which setting to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.engines.base import Engine
from huntlab.errors import DatasetNotFound, EngineError, HuntlabError, JobError, SqlError

if TYPE_CHECKING:
    from huntlab.jobs.mapreduce import Records
    from huntlab.workspace import Workspace

_OOM = re.compile(
    r"OutOfMemoryError|Java heap space|GC overhead limit|SparkOutOfMemoryError|"
    r"exceeding memory limits|Not enough memory",
    re.I,
)
_WORKER_CRASH = re.compile(r"Python worker exited unexpectedly|ExecutorLostFailure", re.I)
_CLASS = re.compile(r"^\[([A-Z_.]+)\]\s*")


class SparkEngine(Engine):
    """Apache Spark through PySpark: one shared session per process (start-up costs seconds)."""

    name = "spark"
    supports_python_udfs = True
    supports_rdd = True  # except over Spark Connect, which records() refuses

    def __init__(self, workspace: Workspace) -> None:
        from huntlab.engines.spark_session import get_session

        super().__init__(workspace)
        self.config = workspace.config.engine
        self.connect = self.config.master.startswith("sc://")
        self.spark = get_session(self.config)
        self._registered: dict[str, str | None] = {}

    def register(self, names: list[str]) -> dict[str, str | None]:
        from huntlab.engines.spark_sources import read_dataset

        store = self.workspace.store
        for name in names:
            if name in self._registered:
                continue
            with spark_errors(f"reading dataset '{name}'", self.config):
                df, version = read_dataset(self.spark, store.get_dataset(name))
                df.createOrReplaceTempView(name)
            self._registered[name] = version
        return {n: self._registered[n] for n in names}

    def sql(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        from huntlab.engines.sqlrefs import referenced_tables
        from huntlab.engines.transpile import parameter_names

        parameter_names(query)  # one query, no positional markers: the same rules as embedded
        known = set(self.workspace.store.dataset_names())
        self.register([t for t in referenced_tables(query) if t in known])
        with spark_errors("SQL statement", self.config, query):
            df = self.spark.sql(query, args=dict(params or {}))
            return _to_arrow(df)

    def dataframe(self, name: str) -> Any:
        self.register([name])
        return self.spark.table(name)

    def to_arrow(self, df: Any) -> pa.Table:
        if not hasattr(df, "toArrow"):
            raise JobError(
                f"a Python job on Spark returned a {type(df).__name__}",
                "Return a PySpark DataFrame or a pyarrow Table",
            )
        with spark_errors("Python job", self.config):
            return _to_arrow(df)

    def records(self, name: str) -> Records:
        """The dataset as map-reduce Records whose steps run on a Spark RDD."""
        if self.connect:
            raise EngineError(
                "map-reduce jobs need RDDs, which Spark Connect does not offer",
                "Set [engine] master to local[N] or spark://host:port, or use --engine duckdb",
            )
        from huntlab.engines.spark_rdd import records_of

        return records_of(self.dataframe(name))

    def close(self) -> None:
        """Drop this engine's views; the session stays up for the next job in this process."""
        for name in self._registered:
            try:
                self.spark.catalog.dropTempView(name)
            except Exception:  # noqa: BLE001 - a stopped session has nothing left to drop
                break
        self._registered.clear()


def _to_arrow(df: Any) -> pa.Table:
    table = df.toArrow()
    return table if isinstance(table, pa.Table) else pa.Table.from_batches(table)


@contextmanager
def spark_errors(what: str, cfg: Any = None, statement: str | None = None) -> Iterator[None]:
    """Turn Spark's exceptions into one-line huntlab errors that say what to change."""
    try:
        yield
    except HuntlabError:
        raise
    except Exception as exc:
        raise classify(exc, what, cfg, statement) from exc


def classify(exc: BaseException, what: str, cfg: Any, statement: str | None) -> HuntlabError:
    """The huntlab error for a Spark exception (memory, worker crash, SQL, or a job failure)."""
    text = str(exc)
    first = _first_line(exc)
    cls = _CLASS.match(first)
    driver_mem = getattr(cfg, "driver_memory", "?")
    if _OOM.search(text):
        return EngineError(
            f"Spark ran out of memory in the {what}: {first}",
            f"Raise [engine] driver_memory (now {driver_mem}) or executor_memory in "
            "huntlab.toml, or raise shuffle_partitions so each task holds less; "
            "the duckdb engine spills to disk instead",
        )
    if _WORKER_CRASH.search(text):
        return EngineError(
            f"a Spark Python worker crashed in the {what}: {first}",
            "It most likely ran out of memory: raise spark.executor.memoryOverhead in "
            "[engine.spark_conf], raise shuffle_partitions, or avoid collecting large lists "
            "per key (groupByKey)",
        )
    name = type(exc).__name__
    if cls and cls.group(1).startswith("TABLE_OR_VIEW_NOT_FOUND"):
        return DatasetNotFound(
            first, "Create it with `huntlab datasets add` or check the name in the statement"
        )
    if name in ("ParseException", "AnalysisException") or (cls and statement):
        where = f"in statement: {_short(statement)}" if statement else "Check the job"
        return SqlError(first, where)
    if name == "PythonException" or "api.python.PythonException" in text:
        return JobError(
            f"a Python function failed on Spark in the {what}: {_python_error(text)}",
            "Run with --debug for the worker traceback",
        )
    return EngineError(f"Spark failed in the {what}: {first}", "Run with --debug for details")


def _python_error(text: str) -> str:
    """The last 'SomeError: message' line of a Python worker traceback."""
    lines = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*\w+(Error|Exception)", ln)]
    return lines[-1][:300] if lines else text.strip().splitlines()[0][:300]


def _first_line(exc: BaseException) -> str:
    for line in str(exc).strip().splitlines():
        if line.strip() and not line.startswith(("An error occurred", "Traceback")):
            return line.strip()[:400]
    return exc.__class__.__name__


def _short(sql: str | None, limit: int = 160) -> str:
    one = " ".join((sql or "").split())
    return one if len(one) <= limit else one[: limit - 3] + "..."
