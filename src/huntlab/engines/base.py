"""The engine contract: run Spark SQL and PySpark-API jobs over catalog datasets, return Arrow."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

if TYPE_CHECKING:
    from huntlab.workspace import Workspace


class Engine(ABC):
    """An execution engine; capability differences are class-level flags."""

    name: ClassVar[str]
    supports_python_udfs: ClassVar[bool] = True
    supports_rdd: ClassVar[bool] = False

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @abstractmethod
    def register(self, names: list[str]) -> dict[str, str | None]:
        """Make catalog datasets visible by name; returns their versions (for lineage)."""

    @abstractmethod
    def sql(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run one Spark SQL statement with bound named parameters; the result as Arrow."""

    @abstractmethod
    def dataframe(self, name: str) -> Any:
        """A PySpark-API DataFrame over a registered dataset."""

    @abstractmethod
    def to_arrow(self, df: Any) -> pa.Table:
        """Materialise a DataFrame of this engine as Arrow."""

    def records(self, name: str) -> Any:
        """A registered dataset as map-reduce `Records` (Arrow batches on local workers)."""
        from huntlab.connectors.base import connector_for
        from huntlab.jobs.mapreduce import Records

        self.register([name])
        return Records.from_arrow(connector_for(self.workspace.store.get_dataset(name)).read())

    def python_context(self) -> Any:
        """Context manager under which Python job files are imported and run."""
        from contextlib import nullcontext

        return nullcontext()

    def close(self) -> None:
        """Release the engine's resources."""
