"""A hunting job reads a PostgreSQL table, joins it with telemetry and upserts into PostgreSQL.

Run as a user runs it (the CLI in a subprocess), with the workspace's metadata on PostgreSQL too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import hl
from tests.services.postgres import PASSWORD_ENV, PostgresServer

pytestmark = pytest.mark.postgres

JOB = """\
-- name: bad_family_hits
-- output: verdicts
-- mode: merge
-- key: family
SELECT e.family, b.severity, count(*) AS detections, count(DISTINCT e.client_id) AS clients
FROM events e JOIN known_bad b ON e.family = b.family
WHERE e.family IS NOT NULL
GROUP BY e.family, b.severity
"""


def _workspace(root: Path, server: PostgresServer, data_db: str, meta_db: str) -> Path:
    from huntlab.demo import load_sample
    from huntlab.workspace import Workspace

    root.mkdir()
    (root / "huntlab.toml").write_text(
        f"""
[metadata]
url = "{server.sqlalchemy_url(meta_db)}"
password_env = "{PASSWORD_ENV}"

[connections.pg]
type = "postgres"
host = "{server.host}"
port = {server.port}
database = "{data_db}"
user = "{server.user}"
password_env = "{PASSWORD_ENV}"
"""
    )
    ws = Workspace.init(root)
    load_sample(ws, 5_000)
    ws.store.close()
    (root / "jobs" / "bad_family_hits.sql").write_text(JOB)
    return root


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_job_reads_joins_and_upserts_into_postgres(
    engine: str,
    postgres_server: PostgresServer,
    postgres_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    meta_db = postgres_server.create_database("meta")
    with postgres_server.connect(postgres_db) as con:
        con.execute("CREATE TABLE known_bad (family text PRIMARY KEY, severity int NOT NULL)")
        con.execute("INSERT INTO known_bad VALUES ('Emotet', 5), ('Qakbot', 4), ('Nope', 1)")
    ws = _workspace(tmp_path / "ws", postgres_server, postgres_db, meta_db)

    r = hl("datasets", "add", "known_bad", "--postgres", "public.known_bad", "--connection", "pg",
           cwd=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = hl("datasets", "add", "verdicts", "--postgres", "verdicts", "--connection", "pg", cwd=ws)
    assert r.returncode == 0 and "does not exist yet" in r.stdout, r.stderr
    r = hl("datasets", "show", "known_bad", cwd=ws)
    assert "severity" in r.stdout and "int32" in r.stdout, r.stderr

    r = hl("run", "bad_family_hits", "--engine", engine, cwd=ws)
    assert r.returncode == 0, r.stderr
    with postgres_server.connect(postgres_db) as con:
        first = dict(con.execute("SELECT family, detections FROM verdicts").fetchall())
        con.execute("UPDATE verdicts SET detections = -1 WHERE family = 'Emotet'")
        con.execute("INSERT INTO verdicts (family, severity, detections, clients) "
                    "VALUES ('Old', 1, 1, 1)")  # fmt: skip
    assert set(first) == {"Emotet", "Qakbot"} and all(n > 0 for n in first.values())

    r = hl("run", "bad_family_hits", "--engine", engine, cwd=ws)  # upsert: by key, others kept
    assert r.returncode == 0, r.stderr
    with postgres_server.connect(postgres_db) as con:
        again = dict(con.execute("SELECT family, detections FROM verdicts").fetchall())
        pk = con.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'verdicts'::regclass "
            "AND contype = 'p'"
        ).fetchone()
    assert again == {**first, "Old": 1} and pk == (1,)

    r = hl("sql", "SELECT family FROM verdicts WHERE detections > 0 ORDER BY family", cwd=ws)
    assert r.returncode == 0 and "Emotet" in r.stdout, r.stderr
    r = hl("runs", cwd=ws)  # runs and lineage were recorded in the PostgreSQL metadata store
    assert "bad_family_hits" in r.stdout and "succeeded" in r.stdout


def test_cli_errors_are_one_line(
    postgres_server: PostgresServer,
    postgres_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    meta_db = postgres_server.create_database("meta")
    ws = _workspace(tmp_path / "ws", postgres_server, postgres_db, meta_db)
    r = hl("datasets", "add", "x", "--query", "SELECT * FROM missing", "--connection", "pg",
           cwd=ws)  # fmt: skip
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and "does not exist" in lines[0], r.stderr
    r = hl("datasets", "add", "x", "--postgres", "t", "--connection", "nope", cwd=ws)
    assert r.returncode == 1 and "connection 'nope' is not defined" in r.stderr
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    r = hl("datasets", "list", cwd=ws)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and "metadata store" in lines[0], r.stderr
    assert "wrong" not in r.stderr
