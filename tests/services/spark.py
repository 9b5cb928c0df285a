"""A real Spark standalone cluster on loopback: one master and two workers from pyspark's jars.

The pip distribution of pyspark has no sbin/start-*.sh, so the master and the workers are started
with bin/spark-class, as those scripts do. Readiness is the master's JSON status listing every
worker ALIVE; a timeout raises with the tail of the logs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services import free_port


def spark_home() -> Path:
    """The pyspark installation, which holds bin/spark-class and the jars."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


@dataclass
class StandaloneCluster:
    """A master and workers, each its own JVM process, with logs in `workdir`."""

    workdir: Path
    workers: int = 2
    worker_memory: str = "1g"
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> None:
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(spark_home()),
               "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}  # fmt: skip
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed by the process
        cmd = [str(spark_home() / "bin" / "spark-class"), *args]
        self.procs.append(
            subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )  # fmt: skip
        )

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        """Start the master and the workers and wait until every worker is ALIVE."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))  # fmt: skip
        for i in range(self.workers):
            work = self.workdir / f"worker{i}"
            work.mkdir(exist_ok=True)
            self._spawn(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host",
                        "127.0.0.1", "--cores", "1", "--memory", self.worker_memory,
                        "--webui-port", str(free_port()), "--work-dir", str(work),
                        self.master_url)  # fmt: skip
        self._wait(timeout)
        return self

    def alive_workers(self) -> int:
        url = f"http://127.0.0.1:{self.ui_port}/json/"
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
            return int(json.load(resp).get("aliveworkers", 0))

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                self.stop()
                raise RuntimeError(f"a Spark process exited early\n{self.log_tail()}")
            try:
                if self.alive_workers() >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Spark cluster not ready in {timeout:.0f}s\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.workdir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop the workers, then the master (SIGTERM, then SIGKILL after 15 s)."""
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        self.procs.clear()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A standalone master and two one-core workers on loopback for the test session."""
    cluster = StandaloneCluster(tmp_path_factory.mktemp("spark-cluster")).start()
    try:
        yield cluster
    finally:
        from huntlab.engines.spark_session import stop_session

        stop_session()  # the application goes first, so the workers stop cleanly
        cluster.stop()


@pytest.fixture(scope="session")
def spark_ws(sample_ws):
    """The shared sample workspace, opened with the spark engine on local[2] (read-only)."""
    from huntlab.workspace import Workspace

    cfg = sample_ws.config.model_copy(deep=True)
    cfg.engine.type = "spark"
    cfg.engine.master = "local[2]"
    cfg.engine.shuffle_partitions = 4
    return Workspace(sample_ws.root, cfg)


@dataclass
class ConnectServer:
    """A Spark Connect server (local[2] inside) on a loopback port, started with spark-submit."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> ConnectServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(spark_home()),
               "PYSPARK_PYTHON": sys.executable}  # fmt: skip
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--class",
               "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", "local[2]",
               "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
               "--conf", f"spark.connect.grpc.binding.port={self.port}",
               "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC",
               "--conf", "spark.sql.shuffle.partitions=4", "spark-internal"]  # fmt: skip
        log = open(self.workdir / "connect.log", "wb")  # noqa: SIM115 - closed by the process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Spark Connect server exited early\n{self.log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Spark Connect server not ready in {timeout:.0f}s\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        text = (self.workdir / "connect.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory: pytest.TempPathFactory):
    """A Spark Connect server on loopback for the test session."""
    server = ConnectServer(tmp_path_factory.mktemp("spark-connect")).start()
    try:
        yield server
    finally:
        from huntlab.engines.spark_session import stop_session

        stop_session()
        server.stop()
