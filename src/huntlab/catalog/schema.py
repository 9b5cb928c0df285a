"""The metadata tables (catalog, runs, lineage); migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),  # external | managed
    Column("format", String(20), nullable=False),  # jsonl | csv | parquet | delta
    Column("location", Text, nullable=False),
    Column("options", JSON, nullable=False, default=dict),
    Column("declared_schema", JSON, nullable=True),
    Column("partition_by", JSON, nullable=False, default=list),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(200), nullable=False, index=True),
    Column("engine", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # running | succeeded | failed
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("rows_in", BigInteger, nullable=True),
    Column("rows_out", BigInteger, nullable=True),
    Column("params", JSON, nullable=False, default=dict),
    Column("error", Text, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(200), nullable=True),
)

lineage = Table(
    "lineage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("dataset", String(200), nullable=False, index=True),
    Column("role", String(10), nullable=False),  # input | output
    Column("version", String(100), nullable=True),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("kind", String(50), nullable=False),  # a models.KINDS entry or spark_lr
    Column("task", String(50), nullable=False),  # multiclass | binary
    Column("params", JSON, nullable=False, default=dict),
    Column("metrics", JSON, nullable=False, default=dict),
    Column("training_data", JSON, nullable=False, default=dict),  # dataset -> version (lineage)
    Column("artifact", Text, nullable=False),  # joblib file under the workspace
    Column("stage", String(20), nullable=False),  # champion | challenger | archived
    Column("notes", Text, nullable=False, default=""),  # why it was promoted or not
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_models_name_version"),
)
