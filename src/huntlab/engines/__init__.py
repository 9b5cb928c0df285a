"""Engines run jobs: DuckDB embedded (default) and Apache Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huntlab.errors import ConfigError

if TYPE_CHECKING:
    from huntlab.engines.base import Engine
    from huntlab.workspace import Workspace

ENGINES = ("duckdb", "spark")


def open_engine(workspace: Workspace, name: str) -> Engine:
    """Open the named engine for a workspace (heavy imports happen here, not at start-up)."""
    if name == "duckdb":
        from huntlab.engines.duckdb import DuckDBEngine

        return DuckDBEngine(workspace)
    if name == "spark":
        from huntlab.engines.spark import SparkEngine

        return SparkEngine(workspace)
    raise ConfigError(f"unknown engine '{name}'", f"Choose one of: {', '.join(ENGINES)}")
