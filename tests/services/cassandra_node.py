"""A real single-node Cassandra 5.0 for tests: the Maven jars run as their own JVM on loopback.

Used by the session fixture in tests/services/cassandra.py and by scripts/cassandra.sh
(`python -m tests.services.cassandra_node start|stop|status`). The jars come from
.ci/setup-cassandra.sh (Maven, cached in .cache/cassandra/lib).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / ".cache" / "cassandra" / "lib"
STATE_DIR = REPO / ".cache" / "cassandra" / "node"
SUPERUSER = ("cassandra", "cassandra")  # Cassandra's built-in default role, loopback only

# The JPMS lines of Cassandra's conf/jvm17-server.options: its internals reach into the JDK.
JVM17_FLAGS = [
    "-Djdk.attach.allowAttachSelf=true",
    *(
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ),
    *(
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
        )
    ),
    "-Dio.netty.tryReflectionSetAccessible=true",
]

LOGBACK = """<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


class NodeError(RuntimeError):
    """The test node could not be started or did not answer in time."""


def find_java() -> str:
    """Java 17 (Cassandra 5.0 runs on 11 or 17): $HUNTLAB_CASSANDRA_JAVA, Debian's, or PATH."""
    explicit = os.environ.get("HUNTLAB_CASSANDRA_JAVA")
    if explicit:
        return explicit
    for cand in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk*/bin/java")):
        return str(cand)
    java = shutil.which("java")
    if not java:
        raise NodeError("no Java 17 found; run .ci/setup-cassandra.sh (installs openjdk-17)")
    return java


@dataclass
class CassandraNode:
    """One node: its folder (conf, data, log), its ports and its JVM process."""

    home: Path
    native_port: int
    storage_port: int
    heap: str = "512M"
    pid: int | None = None
    started_in: float = 0.0
    # periodic (Cassandra's default) acknowledges before fsync; batch fsyncs first (durable acks)
    commitlog_sync: str = "periodic"

    @classmethod
    def create(cls, home: Path, heap: str = "512M") -> CassandraNode:
        """A node in a fresh folder with free loopback ports."""
        if home.exists():
            shutil.rmtree(home)
        (home / "conf").mkdir(parents=True)
        node = cls(home, free_port(), free_port(), heap)
        while node.storage_port == node.native_port:
            node.storage_port = free_port()
        return node

    @property
    def log(self) -> Path:
        return self.home / "system.log"

    @property
    def stdout(self) -> Path:
        return self.home / "stdout.log"

    def write_config(self) -> Path:
        """The minimal single-node cassandra.yaml (Cassandra rejects unknown keys)."""
        data = self.home / "data"
        lines = [
            "cluster_name: huntlab-test",
            "num_tokens: 1",
            "initial_token: 0",
            "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
            "endpoint_snitch: SimpleSnitch",
            f"commitlog_sync: {self.commitlog_sync}",
            *(["commitlog_sync_period: 10000ms"] if self.commitlog_sync == "periodic" else []),
            "seed_provider:",
            "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
            "    parameters:",
            f'      - seeds: "127.0.0.1:{self.storage_port}"',
            "listen_address: 127.0.0.1",
            "rpc_address: 127.0.0.1",
            f"storage_port: {self.storage_port}",
            f"native_transport_port: {self.native_port}",
            "start_native_transport: true",
            "authenticator: PasswordAuthenticator",
            "authorizer: AllowAllAuthorizer",
            "auto_bootstrap: false",
            "concurrent_compactors: 1",
            "file_cache_size: 32MiB",
            "compaction_throughput: 0MiB/s",
            "data_file_directories:",
            f"  - {data / 'data'}",
            f"commitlog_directory: {data / 'commitlog'}",
            f"saved_caches_directory: {data / 'saved_caches'}",
            f"hints_directory: {data / 'hints'}",
            f"cdc_raw_directory: {data / 'cdc_raw'}",
        ]
        path = self.home / "conf" / "cassandra.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.home / "conf" / "logback.xml").write_text(LOGBACK.format(log=self.log))
        return path

    def command(self) -> list[str]:
        """The java command line of CassandraDaemon."""
        jars = sorted(LIB.glob("*.jar"))
        jamm = [j for j in jars if j.name.startswith("jamm-")]
        if not any(j.name.startswith("cassandra-all-") for j in jars) or not jamm:
            raise NodeError(f"Cassandra jars missing in {LIB}; run bash .ci/setup-cassandra.sh")
        conf = self.home / "conf"
        return [
            find_java(),
            "-Xms256M",
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:MaxDirectMemorySize=256M",
            "-XX:+ExitOnOutOfMemoryError",
            "-Xss256k",
            f"-javaagent:{jamm[0]}",
            *JVM17_FLAGS,
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            f"-Dcassandra.storagedir={self.home / 'data'}",
            f"-Dcassandra.logdir={self.home}",
            "-Dcassandra-foreground=yes",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-cp",
            os.pathsep.join([str(conf), *map(str, jars)]),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def start(self, timeout: float = 150.0) -> float:
        """Start the JVM and wait until it answers a CQL query; returns the seconds it took."""
        self.write_config()
        t0 = time.monotonic()
        with open(self.stdout, "wb") as out:
            proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self.pid = proc.pid
        self.save_state()
        try:
            self.wait_ready(timeout, proc)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        self.save_state()
        return self.started_in

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        """Poll the native port, then run a query as the superuser, until it answers."""
        deadline = time.monotonic() + timeout
        last = "native port closed"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise NodeError(f"Cassandra exited with {proc.returncode}\n{self.tail()}")
            if self._port_open():
                try:
                    self.query("SELECT release_version FROM system.local")
                    return
                except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                    last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        raise NodeError(f"Cassandra did not answer in {timeout:.0f}s ({last})\n{self.tail()}")

    def _port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.native_port)) == 0

    def query(self, cql: str) -> list[tuple[object, ...]]:
        """Run one statement as the superuser (readiness check and test set-up)."""
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy

        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=30)
        cluster = Cluster(
            ["127.0.0.1"],
            port=self.native_port,
            auth_provider=PlainTextAuthProvider(*SUPERUSER),
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=5,
            control_connection_timeout=5,
            protocol_version=5,
        )
        try:
            session = cluster.connect()
            return [tuple(r) for r in session.execute(cql)]
        finally:
            cluster.shutdown()

    def tail(self, lines: int = 40) -> str:
        """The last lines of the node's log (or stdout when the log is empty)."""
        for path in (self.log, self.stdout):
            if path.exists() and path.stat().st_size:
                text = path.read_text(errors="replace").splitlines()[-lines:]
                return f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text)
        return "(no log written)"

    def memory_mb(self) -> dict[str, float]:
        """Resident and peak resident memory of the JVM, in MiB."""
        out: dict[str, float] = {}
        if self.pid is None:
            return out
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024
        except OSError:
            pass
        return out

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{self.pid}").exists() and "zombie" not in _proc_state(self.pid)

    def kill(self) -> None:
        """Kill the JVM at once (SIGKILL): a node that dies mid-work."""
        if self.pid is not None and self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            _reap(self.pid, 10)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL) and forget its state."""
        if self.pid is not None and self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            if not _reap(self.pid, timeout):
                os.killpg(self.pid, signal.SIGKILL)
                _reap(self.pid, 10)
        self.pid = None
        self.save_state()

    def save_state(self) -> None:
        state = {**asdict(self), "home": str(self.home)}
        (self.home / "node.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, home: Path) -> CassandraNode:
        state = json.loads((home / "node.json").read_text())
        return cls(**{**state, "home": Path(state["home"])})


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "gone"


def _reap(pid: int, timeout: float) -> bool:
    """Wait for a process to end (reaping it when it is our child); True when it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            if not Path(f"/proc/{pid}").exists() or "zombie" in _proc_state(pid):
                return True
        time.sleep(0.2)
    return False


def main(argv: list[str]) -> int:
    """scripts/cassandra.sh: start, stop or status of a node in .cache/cassandra/node."""
    action = argv[0] if argv else "status"
    if action == "start":
        node = CassandraNode.create(STATE_DIR)
        took = node.start()
        mem = node.memory_mb()
        print(
            f"Cassandra up in {took:.1f}s on 127.0.0.1:{node.native_port} (pid {node.pid}, "
            f"RSS {mem.get('VmRSS', 0):.0f} MiB); user/password {'/'.join(SUPERUSER)}"
        )
        return 0
    if not (STATE_DIR / "node.json").exists():
        print("no node started (scripts/cassandra.sh start)")
        return 0 if action == "stop" else 1
    node = CassandraNode.load(STATE_DIR)
    if action == "stop":
        node.stop()
        print("Cassandra stopped")
        return 0
    up = node.alive()
    state = "running" if up else "stopped"
    print(f"Cassandra {state}: 127.0.0.1:{node.native_port} pid {node.pid}")
    return 0 if up else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
