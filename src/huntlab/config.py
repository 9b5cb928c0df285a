"""Typed workspace configuration, read from `huntlab.toml`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from huntlab.errors import ConfigError

CONFIG_FILE = "huntlab.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EngineConfig(_Strict):
    """Which engine runs jobs, and its resource limits."""

    type: Literal["duckdb", "spark"] = "duckdb"
    memory_limit: str | None = Field(
        default=None, description="DuckDB memory limit, e.g. '1GB'; DuckDB spills beyond it"
    )
    threads: int | None = None
    temp_directory: str | None = None


class MetadataConfig(_Strict):
    """Where the catalog, runs and lineage live (an SQLAlchemy URL)."""

    url: str = "sqlite:///.huntlab/metadata.db"


class WorkspaceSection(_Strict):
    """Workspace identity."""

    name: str = "huntlab"


class HuntlabConfig(_Strict):
    """The whole of huntlab.toml."""

    workspace: WorkspaceSection = WorkspaceSection()
    engine: EngineConfig = EngineConfig()
    metadata: MetadataConfig = MetadataConfig()


def load_config(path: Path) -> HuntlabConfig:
    """Read and validate a huntlab.toml; every problem becomes one ConfigError line."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found", "Create a workspace with `huntlab init`") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "Fix the file") from exc
    try:
        return HuntlabConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{path}: '{where}': {first['msg']}",
            f"Fix that key in {CONFIG_FILE} ({len(exc.errors())} problem(s) in all)",
        ) from exc


DEFAULT_TOML = """\
# huntlab workspace configuration
[workspace]
name = "{name}"

[engine]
# duckdb (embedded, default) or spark
type = "duckdb"
# DuckDB spills to disk beyond this limit instead of running out of memory
# memory_limit = "4GB"
# threads = 2

[metadata]
# catalog, runs and lineage; a PostgreSQL URL is accepted too
url = "sqlite:///.huntlab/metadata.db"
"""
