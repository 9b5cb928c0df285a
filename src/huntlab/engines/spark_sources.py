"""Catalog datasets as Spark DataFrames: Delta snapshots and external files, scanned by Spark.

A managed Delta table is read at one version: the `deltalake` package reads the Delta log on the
driver and lists that snapshot's Parquet files, which Spark's executors then scan in parallel with
the table's own schema (partition columns come from the hive-style paths). Writes go the other
way through the same `deltalake` writer the embedded engine uses, so commits stay atomic and the
table format is identical whichever engine wrote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.base import connector_for
from huntlab.connectors.malformed import Malformed, locate, reason_for
from huntlab.errors import ConnectorError

if TYPE_CHECKING:
    from huntlab.catalog.store import DatasetEntry


def spark_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """An Arrow schema in the types Spark holds (timestamps as UTC microseconds, plain strings)."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        elif pa.types.is_null(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema(fields)


def spark_schema(schema: pa.Schema) -> Any:
    """The Spark StructType of an Arrow schema (timestamps as Spark TIMESTAMP, i.e. UTC)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(spark_arrow_schema(schema))


def read_dataset(spark: Any, entry: DatasetEntry) -> tuple[Any, str | None]:
    """A Spark DataFrame over a catalog dataset, and the version read (for lineage)."""
    conn = connector_for(entry)
    if entry.format == "delta":
        return _read_delta(spark, conn)
    if entry.format in ("jsonl", "csv", "parquet"):
        return _read_files(spark, conn), None
    if entry.format == "postgres":
        return _read_jdbc(spark, conn), conn.version()
    if entry.format == "cassandra":
        return _read_cassandra(spark, conn), conn.version()
    # Other connectors (databases) hand their rows over as Arrow.
    return spark.createDataFrame(conn.read()), conn.version()


def _read_delta(spark: Any, conn: Any) -> tuple[Any, str | None]:
    table = conn.table()
    version = str(table.version())
    arrow_schema = table.schema().to_arrow()
    schema = spark_schema(pa.schema(arrow_schema))
    files = table.file_uris()
    if not files:
        return spark.createDataFrame([], schema), version
    reader = spark.read.schema(schema).option("basePath", str(conn.path))
    return reader.parquet(*files), version


def _read_jdbc(spark: Any, conn: Any) -> Any:
    """A PostgreSQL dataset through the JDBC driver, read by the executors in parallel ranges.

    Types are then cast to what the embedded engine reads (its Arrow schema), so a job sees
    the same columns on both engines."""
    from huntlab.connectors.postgres import jdbc_partitioning

    try:
        parallelism = max(2, spark.sparkContext.defaultParallelism)
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        parallelism = 2
    opts = {**conn.jdbc_options(), **jdbc_partitioning(conn, parallelism), "fetchsize": "10000"}
    try:
        df = spark.read.format("jdbc").options(**opts).load()
    except Exception as exc:
        first = str(exc).splitlines()[0][:300]
        hint = (
            "Run .ci/setup-spark.sh (it resolves the PostgreSQL JDBC driver into .cache/jars)"
            if "org.postgresql.Driver" in first
            else "Check the connection and the table"
        )
        raise ConnectorError(
            f"dataset '{conn.entry.name}': Spark cannot read it over JDBC: {first}", hint
        ) from exc
    target = spark_schema(conn.schema())
    return df.select(*[df[f.name].cast(f.dataType).alias(f.name) for f in target.fields])


TASK_PASSWORD_ENV = "HUNTLAB_TASK_CASSANDRA_PASSWORD"


def _read_cassandra(spark: Any, conn: Any) -> Any:
    """A Cassandra table read by Spark tasks, one token range each, through the Python driver.

    No Spark Cassandra connector is published for Spark 4 (docs/architecture.md), so each task
    runs huntlab's own connector on its range; executors need `huntlab[cassandra]` and the
    password variable of the connection."""
    entry, settings = conn.entry, conn.connection()
    schema = spark_arrow_schema(conn.schema())
    n = conn.splits()
    # Executors may not have the driver's environment or files: the password is resolved here
    # and travels with the tasks, as Spark's own JDBC options carry theirs.
    secret = settings.password()
    task_settings = settings.model_copy(
        update={
            "password_env": TASK_PASSWORD_ENV if secret is not None else None,
            "password_file": None,
        }
    )

    def read_ranges(batches: Any) -> Any:
        import os

        from huntlab.connectors.cassandra import CassandraConnector

        if secret is not None:
            os.environ[TASK_PASSWORD_ENV] = secret
        task_conn = CassandraConnector(entry, connection=task_settings)
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield from task_conn.read_split(index).cast(schema).to_batches()

    return spark.range(n, numPartitions=n).mapInArrow(read_ranges, spark_schema(schema))


CORRUPT = "_huntlab_corrupt_record"


def _scan_files(spark: Any, conn: Any) -> Any:
    """CSV or JSON lines in PERMISSIVE mode: the schema plus a column holding rejected lines."""
    from pyspark.sql.types import StringType, StructField, StructType

    fields = spark_schema(conn.schema()).fields
    schema = StructType([*fields, StructField(CORRUPT, StringType(), True)])
    opts = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    reader = spark.read.schema(schema).options(**opts)
    if conn.entry.format == "csv":
        return reader.options(header=True).csv(conn.paths())
    return reader.json(conn.paths())


def _read_files(spark: Any, conn: Any) -> Any:
    """JSON lines, CSV or Parquet read natively by Spark, typed as the embedded engine does.

    Rejected lines are filtered out of the job's input here and collected by `malformed_lines`."""
    fmt = conn.entry.format
    try:
        if fmt == "parquet":
            return spark.read.parquet(*conn.paths())
        df = _scan_files(spark, conn)
        return df.where(df[CORRUPT].isNull()).drop(CORRUPT)
    except Exception as exc:
        raise ConnectorError(
            f"dataset '{conn.entry.name}': Spark cannot read {fmt} files at "
            f"{conn.entry.location}: {str(exc).splitlines()[0][:200]}",
            "Check the file format, or declare the schema with --schema",
        ) from exc


def malformed_lines(spark: Any, entry: DatasetEntry) -> list[Malformed]:
    """The lines Spark rejected in a CSV/JSON-lines dataset, located and given reasons."""
    from pyspark.sql import functions as F

    conn = connector_for(entry)
    df = _scan_files(spark, conn)
    # Every column is selected: Spark refuses a scan that references only the corrupt column.
    bad = df.where(df[CORRUPT].isNotNull()).select(
        F.input_file_name().alias("_file"), *[df[c] for c in df.columns]
    )
    rows = [(r["_file"], r[CORRUPT]) for r in bad.collect()]
    schema = conn.schema()
    found: list[Malformed] = []
    for path in conn.paths():
        raws = [raw for f, raw in rows if _same_file(f, path)]
        if not raws:
            continue
        where = locate(path, raws)
        for raw in raws:
            numbers = where.get(raw) or [None]
            line = numbers.pop(0) if len(numbers) > 1 else numbers[0]
            reason = reason_for(raw, entry.format, schema) or "rejected by the Spark scanner"
            found.append(Malformed(path, line, raw, reason))
    return sorted(found, key=lambda m: (m.file, m.line or 0))


def _same_file(uri: str, path: str) -> bool:
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path)).resolve() == Path(path).resolve()
