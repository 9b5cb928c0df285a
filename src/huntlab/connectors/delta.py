"""Managed datasets: Delta Lake tables written atomically by huntlab, partitioned by date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.base import (
    Connector,
    Filter,
    WriteMode,
    filters_to_expression,
    register_connector,
)
from huntlab.errors import ConnectorError, InputError

if TYPE_CHECKING:
    import duckdb
    from deltalake import DeltaTable


@register_connector("delta")
class DeltaConnector(Connector):
    """A Delta Lake table: every write is one atomic commit, every commit a version."""

    supports_write = True
    supports_merge = True
    versioned = True

    @property
    def path(self) -> Path:
        return Path(self.entry.location)

    def exists(self) -> bool:
        return (self.path / "_delta_log").is_dir()

    def table(self) -> DeltaTable:
        from deltalake import DeltaTable

        if not self.exists():
            raise ConnectorError(
                f"managed dataset '{self.entry.name}' has no data yet",
                "Run the job that writes it, or load data with `huntlab datasets load`",
            )
        return DeltaTable(str(self.path))

    def register(self, con: duckdb.DuckDBPyConnection, view: str) -> None:
        # A pyarrow dataset lets DuckDB push projections and filters into the Parquet scan.
        con.register(view, self.table().to_pyarrow_dataset())

    def read(
        self, columns: list[str] | None = None, filters: list[Filter] | None = None
    ) -> pa.Table:
        ds = self.table().to_pyarrow_dataset()
        expr = filters_to_expression(filters) if filters else None
        return ds.to_table(columns=columns, filter=expr)

    def schema(self) -> pa.Schema:
        return self.table().to_pyarrow_dataset().schema if self.exists() else pa.schema([])

    def count_rows(self) -> int | None:
        return self.table().to_pyarrow_dataset().count_rows() if self.exists() else 0

    def version(self) -> str | None:
        return str(self.table().version()) if self.exists() else None

    def commit_value(self, key: str, depth: int = 50) -> str | None:
        """The newest value of a custom commit-metadata key among the last `depth` commits."""
        if not self.exists():
            return None
        for h in self.table().history(limit=depth):
            if key in h:
                return str(h[key])
        return None

    def history(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        out = []
        for h in self.table().history():
            metrics = h.get("operationMetrics") or {}
            ts = dt.datetime.fromtimestamp(h["timestamp"] / 1000, dt.UTC)
            out.append(
                {
                    "version": h.get("version"),
                    "timestamp": ts.isoformat(timespec="seconds"),
                    "operation": h.get("operation"),
                    "rows_written": metrics.get("num_added_rows", metrics.get("num_output_rows")),
                    "files_added": metrics.get("num_added_files"),
                    "huntlab_run": (h.get("userMetadata") or h.get("huntlab.run")),
                }
            )
        return out

    def write(
        self,
        data: pa.Table,
        mode: WriteMode = "overwrite",
        keys: list[str] | None = None,
        run_id: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str | None:
        """One commit; `metadata` goes into the commit (e.g. the log position it covers)."""
        from deltalake import CommitProperties, write_deltalake

        partition_by = [c for c in self.entry.partition_by if c in data.schema.names] or None
        props = CommitProperties(
            custom_metadata={"huntlab.run": str(run_id or ""), **(metadata or {})}
        )
        if mode == "merge":
            if not keys:
                raise InputError(
                    f"merge into '{self.entry.name}' needs key columns",
                    "Add `-- key: col1, col2` to the job header",
                )
            missing = [k for k in keys if k not in data.schema.names]
            if missing:
                raise InputError(f"merge keys {missing} are not columns of the job's output")
            if self.exists():
                predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
                (
                    self.table()
                    .merge(
                        data,
                        predicate=predicate,
                        source_alias="s",
                        target_alias="t",
                        commit_properties=props,
                    )
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
                return self.version()
            mode = "overwrite"
        self.path.mkdir(parents=True, exist_ok=True)
        # Writing through a loaded table leaves it at the new version: the log is read once per
        # commit, not again to learn the version (a stream processor commits every second).
        table = self.table() if self.exists() else None
        write_deltalake(
            str(self.path) if table is None else table,
            data,
            mode=mode,
            partition_by=partition_by,
            schema_mode="overwrite" if mode == "overwrite" else None,
            commit_properties=props,
        )
        return self.version() if table is None else str(table.version())
