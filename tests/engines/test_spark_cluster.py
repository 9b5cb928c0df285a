"""The Spark engine against a real standalone cluster: master and two workers on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from huntlab.jobs.normalize import normalize_table
from huntlab.jobs.runner import run_job
from huntlab.workspace import Workspace
from tests.conformance.test_spark_conformance import rows

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def cluster_ws(sample_ws, spark_cluster):
    """The sample workspace pointed at the cluster (each executor: one core, 512 MB)."""
    cfg = sample_ws.config.model_copy(deep=True)
    cfg.engine.type, cfg.engine.master = "spark", spark_cluster.master_url
    cfg.engine.executor_memory, cfg.engine.shuffle_partitions = "512m", 4
    return Workspace(sample_ws.root, cfg)


@pytest.mark.parametrize("job", ["family_prevalence"])
def test_jobs_run_on_the_cluster_as_on_duckdb(cluster_ws, sample_ws, job: str) -> None:
    got = run_job(cluster_ws, job, write=False)
    assert got.engine == "spark"
    want = run_job(sample_ws, job, engine_name="duckdb", write=False).table
    assert got.table.schema == want.schema
    assert rows(got.table) == rows(want)


def test_the_application_ran_on_both_workers(cluster_ws, spark_cluster) -> None:
    engine = cluster_ws.engine()
    try:
        assert engine.spark.sparkContext.master == spark_cluster.master_url
        # four slow tasks spread over the two one-core executors (each runs in its own work dir)
        dirs = (
            engine.spark.sparkContext.parallelize(range(4), 4)
            .map(lambda _: (time.sleep(1), os.getcwd())[1])
            .collect()
        )
        assert len(set(dirs)) == 2, dirs
    finally:
        engine.close()
    url = f"http://127.0.0.1:{spark_cluster.ui_port}/json/"
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
        status = json.load(resp)
    assert status["aliveworkers"] == 2
    assert [a["name"] for a in status["activeapps"]] == ["huntlab"]


def test_cli_run_against_the_cluster(sample_ws, spark_cluster, tmp_path) -> None:
    """`huntlab run JOB --engine spark` in its own process; the map-reduce job runs on RDDs."""
    from huntlab.engines.spark_session import stop_session

    stop_session()  # free the workers' cores for the CLI's own application
    ws = Workspace.init(tmp_path / "ws")
    toml = (ws.root / "huntlab.toml").read_text()
    toml = toml.replace("[engine]\n", f'[engine]\nmaster = "{spark_cluster.master_url}"\n'
                        'executor_memory = "512m"\nshuffle_partitions = 4\n', 1)  # fmt: skip
    (ws.root / "huntlab.toml").write_text(toml)
    ws.store.add_dataset(sample_ws.store.get_dataset("events"))
    (ws.jobs_dir / "hits_by_family.py").write_bytes(
        (sample_ws.jobs_dir / "hits_by_family.py").read_bytes()
    )
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "huntlab.cli", "-w", str(ws.root), "run", "hits_by_family",
         "--engine", "spark"], check=False, capture_output=True, text=True, timeout=400, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "succeeded" in r.stdout
    assert ws.store.list_runs("hits_by_family", 1)[0].engine == "spark"
    duck = ws.engine("duckdb")
    try:  # the Delta output the cluster run committed, read by the embedded engine
        got = duck.sql("SELECT * FROM hits_by_family")
    finally:
        duck.close()
    want = run_job(sample_ws, "hits_by_family", engine_name="duckdb", write=False).table
    assert rows(normalize_table(got)) == rows(want)
