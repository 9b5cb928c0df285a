"""End to end on both engines: one job upserts per-hash state, another joins it."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import hl
from tests.services.cassandra import PASSWORD_ENV
from tests.services.cassandra_node import SUPERUSER

pytestmark = pytest.mark.cassandra

STATE_JOB = """-- output: hash_state
-- mode: merge
-- key: file_hash
SELECT file_hash, min(family) AS family, sum(hit_count) AS hits,
       min(ts) AS first_seen, max(ts) AS last_seen, count(DISTINCT client_id) AS clients
FROM events
WHERE file_hash IS NOT NULL
GROUP BY file_hash
"""

JOIN_JOB = """-- description: detections of hashes seen by at least 2 clients, by country
SELECT e.country, count(*) AS detections, sum(h.hits) AS state_hits
FROM events e JOIN hash_state h ON e.file_hash = h.file_hash
WHERE h.clients >= 2
GROUP BY e.country
ORDER BY e.country
"""

REFERENCE = """
WITH h AS (
  SELECT file_hash, sum(hit_count) AS hits, count(DISTINCT client_id) AS clients
  FROM events WHERE file_hash IS NOT NULL GROUP BY file_hash)
SELECT e.country, count(*) AS detections, sum(h.hits) AS state_hits
FROM events e JOIN h ON e.file_hash = h.file_hash
WHERE h.clients >= 2
GROUP BY e.country
ORDER BY e.country
"""


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_job_upserts_hash_state_and_another_job_joins_it(
    engine, demo_ws, cassandra_node, cassandra_keyspace, monkeypatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, SUPERUSER[1])
    toml = demo_ws.root / "huntlab.toml"
    toml.write_text(
        toml.read_text()
        + f'\n[connections.cass]\ntype = "cassandra"\nport = {cassandra_node.native_port}\n'
        + f'keyspace = "{cassandra_keyspace}"\nconsistency = "ONE"\nuser = "cassandra"\n'
        + f'password_env = "{PASSWORD_ENV}"\n'
    )
    r = hl(
        "datasets", "add", "hash_state", "--cassandra", f"hash_state_e2e_{engine}",
        "--option", "splits=4", "--option", "concurrency=64", cwd=demo_ws.root,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "does not exist yet" in r.stdout
    (demo_ws.jobs_dir / "hash_state.sql").write_text(STATE_JOB)
    (demo_ws.jobs_dir / "hash_join.sql").write_text(JOIN_JOB)
    r = hl("run", "hash_state", "--engine", engine, cwd=demo_ws.root)
    assert r.returncode == 0, r.stdout + r.stderr
    r = hl("run", "hash_state", "--engine", engine, cwd=demo_ws.root)  # upserts the same keys
    assert r.returncode == 0, r.stdout + r.stderr

    from huntlab.workspace import Workspace

    ws = Workspace(demo_ws.root)
    eng = ws.engine("duckdb")
    try:
        distinct = (
            eng.sql("SELECT count(DISTINCT file_hash) AS n FROM events WHERE file_hash IS NOT NULL")
            .column("n")[0]
            .as_py()
        )
        reference = eng.sql(REFERENCE)
    finally:
        eng.close()
    (count,) = cassandra_node.query(
        f"SELECT count(*) FROM {cassandra_keyspace}.hash_state_e2e_{engine}"
    )[0]
    assert count == distinct > 100

    from huntlab.jobs.runner import run_job

    joined = run_job(ws, "hash_join", engine_name=engine, write=False).table
    assert joined.num_rows > 0
    assert joined.to_pylist() == reference.to_pylist()

    r = hl("datasets", "show", "hash_state", cwd=demo_ws.root)
    assert r.returncode == 0 and "file_hash" in r.stdout and "cassandra" in r.stdout
    bad = hl(
        "datasets", "add", "x", "--cassandra", "nope.t", "--connection", "cass", cwd=demo_ws.root
    )
    assert bad.returncode != 0 and "keyspace 'nope' does not exist" in bad.stdout + bad.stderr
    entry = ws.store.get_dataset("hash_state")
    assert entry.options["splits"] == 4 and entry.options["concurrency"] == 64
