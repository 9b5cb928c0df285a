"""The metadata store: catalog entries, runs and lineage in SQLite or PostgreSQL via SQLAlchemy."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, delete, event, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from huntlab.catalog.schema import datasets, lineage, runs
from huntlab.errors import ConfigError, DatasetNotFound

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration; a test keeps it equal to alembic's head.
HEAD_REVISION = "0002"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class DatasetEntry:
    """One named dataset in the catalog."""

    name: str
    kind: str
    format: str
    location: str
    options: dict[str, Any] = field(default_factory=dict)
    declared_schema: dict[str, str] | None = None
    partition_by: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class RunRecord:
    """One run of a job, as recorded."""

    id: int
    job: str
    engine: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_s: float | None
    rows_in: int | None
    rows_out: int | None
    params: dict[str, Any]
    error: str | None
    inputs: dict[str, str | None] = field(default_factory=dict)
    outputs: dict[str, str | None] = field(default_factory=dict)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets `huntlab runs` read while a job writes; busy_timeout avoids spurious lock errors.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class MetadataStore:
    """Catalog, runs and lineage, migrated to the latest schema on open."""

    def __init__(self, url: str | URL) -> None:
        # A URL object masks its password when printed in an error message.
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(
                f"cannot open the metadata store {url!r}: {exc}",
                "Check [metadata] url in huntlab.toml",
            ) from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the latest revision (alembic, run in-process)."""
        if self._revision() == HEAD_REVISION:
            return  # already current: skip importing alembic (start-up time of every command)
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise ConfigError(
                f"cannot migrate the metadata store {self.url!r}: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}",
                "Check that the database is reachable and writable",
            ) from exc

    def _revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            return None

    def close(self) -> None:
        self.engine.dispose()

    # -- datasets ---------------------------------------------------------------------------
    def add_dataset(self, entry: DatasetEntry, *, replace: bool = False) -> None:
        now = _now()
        values = {**entry.__dict__, "created_at": now, "updated_at": now}
        with self.engine.begin() as conn:
            exists = conn.execute(select(datasets.c.name).where(datasets.c.name == entry.name))
            if exists.first() is not None:
                if not replace:
                    from huntlab.errors import InputError

                    raise InputError(
                        f"dataset '{entry.name}' already exists",
                        "Pick another name, or pass --replace to redefine it",
                    )
                values.pop("created_at")
                conn.execute(update(datasets).where(datasets.c.name == entry.name).values(values))
            else:
                conn.execute(insert(datasets).values(values))

    def get_dataset(self, name: str) -> DatasetEntry:
        with self.engine.connect() as conn:
            row = conn.execute(select(datasets).where(datasets.c.name == name)).mappings().first()
        if row is None:
            known = self.dataset_names()
            raise DatasetNotFound(
                f"dataset '{name}' not found; known: {', '.join(known) or '(none)'}",
                "Create it with `huntlab datasets add` or check the name",
            )
        return _entry(row)

    def has_dataset(self, name: str) -> bool:
        with self.engine.connect() as conn:
            q = select(datasets.c.name).where(datasets.c.name == name)
            return conn.execute(q).first() is not None

    def list_datasets(self) -> list[DatasetEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(datasets).order_by(datasets.c.name)).mappings().all()
        return [_entry(r) for r in rows]

    def dataset_names(self) -> list[str]:
        return [d.name for d in self.list_datasets()]

    def remove_dataset(self, name: str) -> None:
        self.get_dataset(name)
        with self.engine.begin() as conn:
            conn.execute(delete(datasets).where(datasets.c.name == name))

    def touch_dataset(self, name: str) -> None:
        with self.engine.begin() as conn:
            q = update(datasets).where(datasets.c.name == name).values(updated_at=_now())
            conn.execute(q)

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, job: str, engine: str, params: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(
                insert(runs).values(
                    job=job,
                    engine=engine,
                    status="running",
                    started_at=_now(),
                    params=params,
                    pid=os.getpid(),
                    host=socket.gethostname(),
                )
            )
            return int(res.inserted_primary_key[0])

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        rows_in: int | None = None,
        rows_out: int | None = None,
        error: str | None = None,
        inputs: dict[str, str | None] | None = None,
        outputs: dict[str, str | None] | None = None,
    ) -> None:
        now = _now()
        with self.engine.begin() as conn:
            started = conn.execute(select(runs.c.started_at).where(runs.c.id == run_id)).scalar()
            if started is not None and started.tzinfo is None:
                started = started.replace(tzinfo=dt.UTC)
            duration = (now - started).total_seconds() if started else None
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=now,
                    duration_s=duration,
                    rows_in=rows_in,
                    rows_out=rows_out,
                    error=error,
                )
            )
            for role, items in (("input", inputs or {}), ("output", outputs or {})):
                for name, version in items.items():
                    conn.execute(
                        insert(lineage).values(
                            run_id=run_id, dataset=name, role=role, version=version
                        )
                    )

    def list_runs(self, job: str | None = None, limit: int = 50) -> list[RunRecord]:
        q = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if job:
            q = q.where(runs.c.job == job)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["id"] for r in rows]
            lin = (
                conn.execute(select(lineage).where(lineage.c.run_id.in_(ids))).mappings().all()
                if ids
                else []
            )
        out = []
        for r in rows:
            rec = RunRecord(**{k: r[k] for k in RunRecord.__dataclass_fields__ if k in r})
            if rec.status == "running" and _dead(r["pid"], r["host"]):
                rec.status = "interrupted"
            for item in lin:
                if item["run_id"] == r["id"]:
                    target = rec.inputs if item["role"] == "input" else rec.outputs
                    target[item["dataset"]] = item["version"]
            out.append(rec)
        return out


def _entry(row: Any) -> DatasetEntry:
    return DatasetEntry(
        name=row["name"],
        kind=row["kind"],
        format=row["format"],
        location=row["location"],
        options=row["options"] or {},
        declared_schema=row["declared_schema"],
        partition_by=row["partition_by"] or [],
        description=row["description"] or "",
    )


def _dead(pid: int | None, host: str | None) -> bool:
    """A run whose process is gone (killed) on this host can never finish."""
    if pid is None or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
