"""A workspace is a folder: huntlab.toml, jobs/, data/ and .huntlab/ (metadata, logs)."""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path

from huntlab.catalog.store import DatasetEntry, MetadataStore
from huntlab.config import CONFIG_FILE, DEFAULT_TOML, HuntlabConfig, load_config
from huntlab.errors import ConfigError, InputError

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_name(name: str, what: str = "dataset") -> str:
    """Dataset and job names are plain identifiers, usable as table names in SQL."""
    if not NAME_RE.match(name):
        raise InputError(
            f"invalid {what} name {name!r}",
            "Use letters, digits and underscores, starting with a letter or underscore",
        )
    return name


class Workspace:
    """An opened workspace: its configuration, metadata store and folders."""

    def __init__(self, root: Path, config: HuntlabConfig | None = None) -> None:
        self.root = root.resolve()
        self.config = config or load_config(self.root / CONFIG_FILE)

    # -- creation and discovery -------------------------------------------------------------
    @classmethod
    def init(cls, root: Path, name: str | None = None) -> Workspace:
        """Create a workspace (idempotent: an existing huntlab.toml is kept)."""
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("jobs", "data", ".huntlab"):
            (root / sub).mkdir(exist_ok=True)
        cfg = root / CONFIG_FILE
        if not cfg.exists():
            cfg.write_text(DEFAULT_TOML.format(name=name or root.resolve().name), encoding="utf-8")
        ws = cls(root)
        ws.store  # noqa: B018 - creates and migrates the metadata store
        return ws

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace:
        """The workspace containing `start` (or $HUNTLAB_WORKSPACE, or the current directory)."""
        env = os.environ.get("HUNTLAB_WORKSPACE")
        here = Path(env) if env and start is None else (start or Path.cwd())
        here = here.resolve()
        for d in (here, *here.parents):
            if (d / CONFIG_FILE).is_file():
                return cls(d)
        raise ConfigError(
            f"no huntlab workspace at {here} or above it (looked for {CONFIG_FILE})",
            "Create one with `huntlab init DIR`, or cd into one, or pass --workspace",
        )

    # -- parts ------------------------------------------------------------------------------
    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def meta_dir(self) -> Path:
        return self.root / ".huntlab"

    @cached_property
    def store(self) -> MetadataStore:
        url = self.config.metadata.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            # Relative SQLite paths are relative to the workspace, not the current directory.
            url = "sqlite:///" + str(self.root / url.removeprefix("sqlite:///"))
        self.meta_dir.mkdir(exist_ok=True)
        if url.startswith("sqlite"):
            return MetadataStore(url)
        return MetadataStore(self.config.metadata.resolved_url())

    def managed_location(self, name: str) -> Path:
        return self.data_dir / check_name(name)

    def ensure_managed(self, name: str, partition_by: list[str] | None = None) -> DatasetEntry:
        """The catalog entry of a managed dataset, created on first write."""
        if self.store.has_dataset(name):
            return self.store.get_dataset(name)
        entry = DatasetEntry(
            name=check_name(name),
            kind="managed",
            format="delta",
            location=str(self.managed_location(name)),
            partition_by=partition_by or [],
        )
        self.store.add_dataset(entry)
        return entry

    def engine(self, name: str | None = None):
        """An engine bound to this workspace (the configured one unless `name` is given)."""
        from huntlab.engines import open_engine

        return open_engine(self, name or self.config.engine.type)
