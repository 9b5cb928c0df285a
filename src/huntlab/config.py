"""Typed workspace configuration, read from `huntlab.toml`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

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
    # Apache Spark (type = "spark")
    master: str = Field(
        default="local[*]", description="local[N], spark://host:port or sc://host:port (Connect)"
    )
    driver_memory: str = Field(default="2g", description="spark.driver.memory")
    executor_memory: str | None = Field(default=None, description="spark.executor.memory")
    shuffle_partitions: int | None = Field(
        default=None, description="spark.sql.shuffle.partitions; default 2 x cores in local mode"
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="extra Spark settings, e.g. spark.executor.cores"
    )


class MetadataConfig(_Strict):
    """Where the catalog, runs and lineage live (an SQLAlchemy URL)."""

    url: str = "sqlite:///.huntlab/metadata.db"


class WorkspaceSection(_Strict):
    """Workspace identity."""

    name: str = "huntlab"


class AnonymizeConfig(_Strict):
    """How the collector pseudonymizes and coarsens client data (DESIGN decision 9)."""

    key_file: str | None = Field(default=None, description="HMAC key file, outside the repo")
    key_env: str | None = "HUNTLAB_PSEUDONYM_KEY"
    rotation: Literal["none", "day", "week", "month"] = "month"
    link_across_periods: bool = False
    geo_table: str | None = Field(default=None, description="CSV of start,end,country ranges")


class UpstreamConfig(_Strict):
    """The upstream collector: where it listens, what it accepts, where it writes."""

    host: str = "127.0.0.1"
    port: int = 8470
    # product -> name of the environment variable that holds that product's client key
    client_keys_env: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = 16 * 1024 * 1024
    max_events: int = 100_000
    max_field_chars: int = 4096
    log_dir: str = ".huntlab/upstream/log"
    segment_mb: int = 64
    dataset_prefix: str = "upstream_"
    k_anonymity: int = 10
    anonymize: AnonymizeConfig = AnonymizeConfig()


class _Secret(_Strict):
    """A connection whose password comes from the environment or a file, never from this file."""

    user: str | None = None
    password_env: str | None = Field(default=None, description="variable holding the password")
    password_file: str | None = Field(default=None, description="file holding the password")

    def password(self) -> str | None:
        """The password from password_env or password_file (None when neither is set)."""
        import os

        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"the environment variable {self.password_env} is not set",
                    f"Export {self.password_env} with the password, or use password_file",
                )
            return value
        if self.password_file:
            path = Path(self.password_file).expanduser()
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read password_file {path}: {exc}",
                    "Create it (chmod 600) or set password_env",
                ) from exc
        return None


class PostgresConnection(_Secret):
    """A PostgreSQL server (`[connections.NAME]` with type = "postgres")."""

    type: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "postgres"
    options: dict[str, str] = Field(default_factory=dict, description="libpq options, e.g. sslmode")


class CassandraConnection(_Secret):
    """A Cassandra cluster (`[connections.NAME]` with type = "cassandra")."""

    type: Literal["cassandra"]
    contact_points: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    port: int = 9042
    keyspace: str | None = None
    local_dc: str | None = None
    consistency: str = "LOCAL_QUORUM"


Connection = Annotated[PostgresConnection | CassandraConnection, Field(discriminator="type")]


class HuntlabConfig(_Strict):
    """The whole of huntlab.toml."""

    workspace: WorkspaceSection = WorkspaceSection()
    engine: EngineConfig = EngineConfig()
    metadata: MetadataConfig = MetadataConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    # named connections to external systems: [connections.NAME] with a `type`
    connections: dict[str, Connection] = Field(default_factory=dict)

    def connection(self, name: str) -> PostgresConnection | CassandraConnection:
        """A named connection, or a ConfigError listing the known ones."""
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(
                f"connection '{name}' is not defined in {CONFIG_FILE} (known: {known})",
                f'Add a [connections.{name}] section with type = "postgres" or "cassandra"',
            ) from None


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
# Apache Spark (type = "spark"): local[N], spark://host:port or sc://host:port
# master = "local[*]"
# driver_memory = "2g"
# shuffle_partitions = 8
# [engine.spark_conf]
# "spark.executor.cores" = "2"

[metadata]
# catalog, runs and lineage; a PostgreSQL URL is accepted too
url = "sqlite:///.huntlab/metadata.db"

[upstream]
# the collector (`huntlab upstream serve`)
host = "127.0.0.1"
port = 8470
# dataset_prefix = "upstream_"
# k_anonymity = 10

[upstream.client_keys_env]
# product = "ENV_VAR_HOLDING_ITS_CLIENT_KEY"; keys never live in this file
free_av = "HUNTLAB_KEY_FREE_AV"

[upstream.anonymize]
# the HMAC key for pseudonyms comes from this environment variable or key_file (outside the repo)
key_env = "HUNTLAB_PSEUDONYM_KEY"
# key_file = "~/.config/huntlab/pseudonym.key"
rotation = "month"
# geo_table = "/etc/huntlab/ip-country.csv"   # start,end,country ranges; else country "ZZ"
"""
