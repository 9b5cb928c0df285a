"""The connector contract: every source reads and writes Arrow and registers in an engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa

from huntlab.errors import ConnectorError

if TYPE_CHECKING:
    import duckdb

    from huntlab.catalog.store import DatasetEntry

WriteMode = Literal["overwrite", "append", "merge"]


@dataclass(frozen=True)
class Filter:
    """A simple pushed-down predicate: column op literal."""

    column: str
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in"]
    value: Any


class Connector(ABC):
    """Reads a dataset as Arrow and, where supported, writes Arrow back."""

    supports_write: ClassVar[bool] = False
    supports_merge: ClassVar[bool] = False
    versioned: ClassVar[bool] = False

    def __init__(self, entry: DatasetEntry) -> None:
        self.entry = entry

    @abstractmethod
    def read(
        self, columns: list[str] | None = None, filters: list[Filter] | None = None
    ) -> pa.Table:
        """Read the dataset (selected columns, rows matching every filter) as one Arrow table."""

    @abstractmethod
    def schema(self) -> pa.Schema:
        """The dataset's Arrow schema."""

    def register(self, con: duckdb.DuckDBPyConnection, view: str) -> None:
        """Expose the dataset to DuckDB as a view; subclasses override with a native scan."""
        con.register(view, self.read())

    def count_rows(self) -> int | None:
        """The number of rows if the source knows it cheaply (metadata), else None."""
        return None

    def version(self) -> str | None:
        """The current version, for lineage; None where the source has no versions."""
        return None

    def history(self) -> list[dict[str, Any]]:
        """The dataset's past versions, newest first."""
        return []

    def write(
        self, data: pa.Table, mode: WriteMode = "overwrite", keys: list[str] | None = None
    ) -> str | None:
        """Write data atomically; returns the new version."""
        raise ConnectorError(
            f"dataset '{self.entry.name}' ({self.entry.format}) is read-only",
            "Write job results to a managed dataset instead",
        )


_REGISTRY: dict[str, type[Connector]] = {}


def register_connector(*formats: str) -> Any:
    """Class decorator: make a connector available for the given dataset formats."""

    def wrap(cls: type[Connector]) -> type[Connector]:
        for fmt in formats:
            _REGISTRY[fmt] = cls
        return cls

    return wrap


def connector_for(entry: DatasetEntry) -> Connector:
    """The connector that serves a catalog entry."""
    # Importing the built-in connectors registers them.
    from huntlab.connectors import cassandra, delta, files, postgres  # noqa: F401

    try:
        cls = _REGISTRY[entry.format]
    except KeyError:
        raise ConnectorError(
            f"no connector for format '{entry.format}' of dataset '{entry.name}'",
            f"Known formats: {', '.join(sorted(_REGISTRY))}",
        ) from None
    return cls(entry)


def apply_filters(table: pa.Table, filters: list[Filter] | None) -> pa.Table:
    """Filter an Arrow table in memory (for connectors that cannot push filters down)."""

    if not filters:
        return table
    return table.filter(filters_to_expression(filters))


def filters_to_expression(filters: list[Filter]) -> Any:
    """Combine filters into one pyarrow compute expression."""
    import pyarrow.compute as pc

    ops = {
        "=": lambda f: pc.field(f.column) == f.value,
        "!=": lambda f: pc.field(f.column) != f.value,
        "<": lambda f: pc.field(f.column) < f.value,
        "<=": lambda f: pc.field(f.column) <= f.value,
        ">": lambda f: pc.field(f.column) > f.value,
        ">=": lambda f: pc.field(f.column) >= f.value,
        "in": lambda f: pc.field(f.column).isin(list(f.value)),
    }
    expr = None
    for f in filters:
        e = ops[f.op](f)
        expr = e if expr is None else expr & e
    return expr
