"""The metadata store: datasets, runs, lineage, migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huntlab.catalog.store import DatasetEntry, MetadataStore
from huntlab.errors import DatasetNotFound, InputError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The same tests on the default SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    from huntlab.config import MetadataConfig
    from tests.services.postgres import PASSWORD_ENV

    server = request.getfixturevalue("postgres_server")
    db = request.getfixturevalue("postgres_db")
    request.getfixturevalue("monkeypatch").setenv(PASSWORD_ENV, server.password)
    return MetadataConfig(url=server.sqlalchemy_url(db), password_env=PASSWORD_ENV).resolved_url()


@pytest.fixture()
def store(store_url: Any) -> Iterator[MetadataStore]:
    s = MetadataStore(store_url)
    yield s
    s.close()


def test_dataset_round_trip(store: MetadataStore) -> None:
    entry = DatasetEntry("hits", "external", "csv", "/data/*.csv", declared_schema={"a": "BIGINT"})
    store.add_dataset(entry)
    got = store.get_dataset("hits")
    assert got == entry
    assert store.dataset_names() == ["hits"]


def test_duplicate_dataset_is_refused_unless_replaced(store: MetadataStore) -> None:
    store.add_dataset(DatasetEntry("a", "external", "csv", "/x.csv"))
    with pytest.raises(InputError, match="already exists"):
        store.add_dataset(DatasetEntry("a", "external", "csv", "/y.csv"))
    store.add_dataset(DatasetEntry("a", "external", "csv", "/y.csv"), replace=True)
    assert store.get_dataset("a").location == "/y.csv"


def test_unknown_dataset_lists_known_ones(store: MetadataStore) -> None:
    store.add_dataset(DatasetEntry("crashes", "external", "csv", "/x.csv"))
    with pytest.raises(DatasetNotFound, match="known: crashes"):
        store.get_dataset("detections")


def test_runs_and_lineage(store: MetadataStore) -> None:
    run = store.start_run("job1", "duckdb", {"k": "v"})
    assert store.list_runs()[0].status == "running"
    store.finish_run(
        run,
        status="succeeded",
        rows_in=10,
        rows_out=2,
        inputs={"events": "3"},
        outputs={"out": "0"},
    )
    rec = store.list_runs("job1")[0]
    assert (rec.status, rec.rows_in, rec.rows_out) == ("succeeded", 10, 2)
    assert rec.inputs == {"events": "3"} and rec.outputs == {"out": "0"}
    assert rec.duration_s is not None and rec.duration_s >= 0


def test_reopen_keeps_data_and_migrations_are_idempotent(store_url: Any) -> None:
    first = MetadataStore(store_url)
    first.add_dataset(DatasetEntry("a", "managed", "delta", "/a"))
    first.close()
    again = MetadataStore(store_url)
    assert again.dataset_names() == ["a"]
    again.close()


def test_run_of_a_dead_process_shows_interrupted(store: MetadataStore) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = store.start_run("j", "duckdb", {})
    with store.engine.begin() as conn:
        from sqlalchemy import update

        from huntlab.catalog.schema import runs

        conn.execute(update(runs).where(runs.c.id == run).values(pid=proc.pid))
    assert store.list_runs()[0].status == "interrupted"


def test_head_revision_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from huntlab.catalog.store import HEAD_REVISION, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


@pytest.mark.postgres
def test_metadata_url_never_holds_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from huntlab.config import MetadataConfig
    from huntlab.errors import ConfigError

    with pytest.raises(ConfigError, match="holds a password"):
        MetadataConfig(url="postgresql+psycopg://u:secret@h/db").resolved_url()
    plain = MetadataConfig(url="postgresql://u@h:5/db").resolved_url()
    assert plain.drivername == "postgresql+psycopg"
    monkeypatch.delenv("NO_SUCH_PW", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_PW is not set"):
        MetadataConfig(url="postgresql+psycopg://u@h/db", password_env="NO_SUCH_PW").resolved_url()


@pytest.mark.postgres
def test_unreachable_metadata_server_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huntlab.config import MetadataConfig
    from huntlab.errors import ConfigError
    from tests.services import free_port

    monkeypatch.setenv("META_PW", "s3cret-value")
    url = MetadataConfig(
        url=f"postgresql+psycopg://u@127.0.0.1:{free_port()}/db?connect_timeout=3",
        password_env="META_PW",
    ).resolved_url()
    with pytest.raises(ConfigError, match="cannot migrate the metadata store") as err:
        MetadataStore(url)
    assert "s3cret-value" not in str(err.value) and "\n" not in str(err.value)
