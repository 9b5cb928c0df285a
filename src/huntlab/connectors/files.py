"""External datasets over files: JSON lines, CSV and Parquet, by path or glob."""

from __future__ import annotations

import glob as globlib
import gzip
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.base import Connector, Filter, apply_filters, register_connector
from huntlab.connectors.malformed import Malformed, numbered_lines, reason_for
from huntlab.errors import ConnectorError

if TYPE_CHECKING:
    import duckdb

_COLUMNS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_CAST = re.compile(r"Could not convert string \"(.*)\" to '(\w+)'")


@register_connector("jsonl", "csv", "parquet")
class FileConnector(Connector):
    """Reads files with DuckDB's native scanners; malformed rows are skipped (and quarantined)."""

    def paths(self) -> list[str]:
        found = sorted(globlib.glob(self.entry.location, recursive=True))
        if not found:
            raise ConnectorError(
                f"dataset '{self.entry.name}': no file matches {self.entry.location}",
                "Check the path or glob given to `huntlab datasets add`",
            )
        return found

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        paths: list[str] | None = None,
        rejects: str | None = None,
    ) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation scanning the files (no SQL built from the path).

        With `rejects`, a CSV scan records the rows it skips in the tables `<rejects>_errors` and
        `<rejects>_scans` of `con` (DuckDB's store_rejects), read back by `malformed_lines`."""
        import duckdb

        paths = paths or self.paths()
        fmt = self.entry.format
        declared = self.entry.declared_schema
        try:
            if fmt == "parquet":
                return con.read_parquet(paths, union_by_name=True)
            if fmt == "csv":
                kw: dict[str, Any] = {"header": True, "ignore_errors": True}
                if rejects:
                    kw |= {"store_rejects": True, "rejects_table": f"{rejects}_errors"}
                    kw["rejects_scan"] = f"{rejects}_scans"
                if declared:
                    kw["dtype"] = declared
                return con.read_csv(paths, **kw)
            kw = {"format": "newline_delimited", "ignore_errors": True}
            if declared:
                kw["columns"] = declared
            rel = con.read_json(paths, **kw)
            # DuckDB turns a line that does not parse into an all-NULL row: drop (and count) it.
            all_null = None
            for col in rel.columns:
                e = duckdb.ColumnExpression(col).isnull()
                all_null = e if all_null is None else all_null & e
            return rel.filter(~all_null) if all_null is not None else rel
        except duckdb.Error as exc:
            raise ConnectorError(
                f"dataset '{self.entry.name}': cannot read {fmt} files at "
                f"{self.entry.location}: {str(exc).splitlines()[0]}",
                "Check the file format, or declare the schema with --schema",
            ) from exc

    def register(self, con: duckdb.DuckDBPyConnection, view: str) -> None:
        rejects = f"huntlab_rejects_{view}" if self.entry.format == "csv" else None
        self.relation(con, rejects=rejects).create_view(view, replace=True)

    def read(
        self, columns: list[str] | None = None, filters: list[Filter] | None = None
    ) -> pa.Table:
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        rel = self.relation(con)
        if columns:
            rel = rel.select(*[duckdb.ColumnExpression(c) for c in columns])
        return apply_filters(rel.to_arrow_table(), filters)

    def schema(self) -> pa.Schema:
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        return self.relation(con).limit(0).to_arrow_table().schema

    def count_rows(self) -> int | None:
        if self.entry.format != "parquet":
            return None
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.paths())

    def malformed_lines(
        self, con: duckdb.DuckDBPyConnection | None = None, view: str | None = None
    ) -> list[Malformed]:
        """The lines the scanner rejects, with reasons (CSV: DuckDB's rejects tables).

        For CSV registered as `view` on `con`, the job's own scan has filled the rejects tables
        and nothing is read again; otherwise the files are scanned once more."""
        if self.entry.format == "csv":
            return self._csv_rejects(con, view)
        if self.entry.format == "jsonl":
            return self._json_rejects()
        return []

    def _csv_rejects(
        self, con: duckdb.DuckDBPyConnection | None, view: str | None
    ) -> list[Malformed]:
        import duckdb

        if con is not None and view is not None:
            try:
                return _rejects_of(con, f"huntlab_rejects_{view}")
            except duckdb.CatalogException:
                pass  # the view was never scanned (e.g. map-reduce reads the files itself)
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        reader = self.relation(con, rejects="huntlab_rejects").to_arrow_reader()
        for _ in reader:  # every column materialised: the casts are what reject rows
            pass
        return _rejects_of(con, "huntlab_rejects")

    def _json_rejects(self) -> list[Malformed]:
        """Lines that do not parse into a row; read line by line only when rows are missing."""
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        schema: pa.Schema | None = None
        found: list[Malformed] = []
        for path in self.paths():
            rel = self.relation(con, [path])
            rows = rel.aggregate("count(*)").fetchone()[0]  # type: ignore[index]
            if rows >= _line_count(path) or rows >= _non_empty_lines(path):
                continue
            schema = schema or self.relation(con).limit(0).to_arrow_table().schema
            for n, text in numbered_lines(path):
                reason = reason_for(text, "jsonl", schema) if text.strip() else None
                if reason:
                    found.append(Malformed(path, n, text, reason))
        return found

    def malformed_rows(self) -> int:
        """Count rows the scanner had to skip (CSV rejects; JSON lines that do not parse)."""
        import duckdb

        con = duckdb.connect()
        total_lines = 0
        if self.entry.format == "parquet":
            return 0
        for p in self.paths():
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as fh:
                total_lines += sum(1 for line in fh if line.strip())
        # Materialise every column: a bare count(*) would skip the casts that reject rows.
        rows = self.relation(con).to_arrow_table().num_rows
        header = len(self.paths()) if self.entry.format == "csv" else 0
        return max(0, total_lines - header - int(rows))


def _rejects_of(con: duckdb.DuckDBPyConnection, prefix: str) -> list[Malformed]:
    """One malformed line per rejected CSV line, from DuckDB's rejects tables."""
    errors, scans = (_quoted(f"{prefix}_{t}") for t in ("errors", "scans"))
    rows = con.execute(
        "SELECT s.file_path, e.line, any_value(e.csv_line ORDER BY e.column_idx), "
        "any_value(e.error_type ORDER BY e.column_idx), "
        "any_value(e.error_message ORDER BY e.column_idx), "
        "any_value(e.column_name ORDER BY e.column_idx) "
        f"FROM {errors} e JOIN {scans} s USING (scan_id, file_id) "
        "GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    return [
        Malformed(path, int(line), raw or "", _csv_reason(kind, msg, raw, col))
        for path, line, raw, kind, msg, col in rows
    ]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _line_count(path: str) -> int:
    """Newlines (plus an unterminated last line): a fast upper bound of the non-empty lines."""
    opener = gzip.open if path.endswith(".gz") else open
    count, last = 0, b"\n"
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _csv_reason(error_type: str, message: str, value: str | None, column: str | None) -> str:
    """The quarantine reason of one DuckDB CSV reject, worded as `reason_for` words it."""
    cols = _COLUMNS.search(message)
    if cols:
        return f"CSV: expected {cols.group(1)} columns, found {cols.group(2)}"
    cast = _CAST.search(message)
    if error_type == "CAST" and cast:
        return f"cannot cast '{cast.group(1)[:80]}' to {cast.group(2)} in column {column}"
    return f"CSV: {message.splitlines()[0][:200]}"


def _non_empty_lines(path: str) -> int:
    """Lines holding more than white space (what a scanner should turn into rows)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def infer_format(location: str) -> str:
    """Guess the file format from the extension of a path or glob."""
    name = Path(location).name.lower()
    for ext, fmt in (
        (".parquet", "parquet"),
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
    ):
        if name.endswith((ext, ext + ".gz")):
            return fmt
    raise ConnectorError(
        f"cannot tell the format of {location} from its extension",
        "Pass --format jsonl|csv|parquet",
    )
