"""A real PostgreSQL server for tests: Debian's binaries, a temporary cluster, a loopback port.

`initdb` refuses to run as root, so under root (CI) the cluster belongs to the `postgres` system
user that the Debian package creates (`.ci/setup-postgres.sh` installs it when missing).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port

BIN_DIRS = [os.environ.get("HUNTLAB_PG_BIN", ""), "/usr/lib/postgresql/15/bin"]
ROLE = "huntlab_test"
START_TIMEOUT_S = 30.0


def pg_bin() -> Path:
    """The folder holding initdb and postgres, or a clear failure saying how to install them."""
    for d in BIN_DIRS:
        if d and (Path(d) / "initdb").is_file():
            return Path(d)
    raise RuntimeError(
        "PostgreSQL 15 binaries not found in /usr/lib/postgresql/15/bin; "
        "run `bash .ci/setup-postgres.sh` (apt-get install postgresql-15) or set HUNTLAB_PG_BIN"
    )


@dataclass
class PostgresServer:
    """A running test cluster: where it listens and how to log in."""

    host: str
    port: int
    user: str
    password: str
    datadir: Path
    process: subprocess.Popen[bytes] | None = None
    _owner: dict[str, Any] | None = None

    def conninfo(self, dbname: str = "postgres", **extra: Any) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            **extra,
        )

    def sqlalchemy_url(self, dbname: str) -> str:
        """A URL without the password (it comes from PGPASSWORD or password_env)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.conninfo(dbname), autocommit=True)

    def create_database(self, prefix: str = "t") -> str:
        """A fresh empty database (cheap with fsync off), so tests never see each other's tables."""
        from psycopg import sql

        name = f"{prefix}_{secrets.token_hex(4)}"
        with self.connect() as con:
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_tail(self, lines: int = 30) -> str:
        log = self.datadir / "server.log"
        if not log.exists():
            return "(no server log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to the `postgres` user (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root but there is no `postgres` system user to own the test cluster; "
            "run `bash .ci/setup-postgres.sh`"
        ) from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def start_server(timeout_s: float = START_TIMEOUT_S) -> PostgresServer:
    """initdb into a temporary folder, start postgres on a free loopback port, wait for it."""
    bindir = pg_bin()
    owner = _run_as()
    top = Path(tempfile.mkdtemp(prefix="huntlab-pg-"))
    datadir = top / "data"
    password = secrets.token_urlsafe(18)
    pwfile = top / "pw"
    pwfile.write_text(password + "\n")
    if owner:
        os.chown(top, owner["user"], owner["group"])
        os.chown(pwfile, owner["user"], owner["group"])
    pwfile.chmod(0o600)
    init = subprocess.run(
        [str(bindir / "initdb"), "-D", str(datadir), "-U", ROLE, f"--pwfile={pwfile}",
         "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        capture_output=True, text=True, check=False, **owner,
    )  # fmt: skip
    pwfile.unlink()
    if init.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr.strip()[-2000:]}")
    server = PostgresServer("127.0.0.1", free_port(), ROLE, password, datadir, _owner=owner)
    log = open(datadir / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    if owner:
        os.chown(datadir / "server.log", owner["user"], owner["group"])
    # fsync off: a test cluster is thrown away, and creating a database per test stays cheap.
    server.process = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(datadir), "-p", str(server.port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={datadir}",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
         "-c", "max_connections=100", "-c", "shared_buffers=128MB"],
        stdout=log, stderr=subprocess.STDOUT, **owner,
    )  # fmt: skip
    log.close()
    _wait_ready(server, timeout_s)
    return server


def _wait_ready(server: PostgresServer, timeout_s: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        try:
            with psycopg.connect(server.conninfo(connect_timeout=2)) as con:
                con.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(
        f"PostgreSQL did not accept connections on port {server.port} within {timeout_s:.0f}s "
        f"(last error: {last}); server log tail:\n{tail}"
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole test session."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    from psycopg import sql

    name = postgres_server.create_database()
    yield name
    with postgres_server.connect() as con:
        con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


PASSWORD_ENV = "HUNTLAB_TEST_PG_PASSWORD"


@pytest.fixture()
def postgres_connection(
    postgres_server: PostgresServer, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A named-connection config for a fresh database; the password comes from the environment."""
    from huntlab.config import PostgresConnection

    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    return PostgresConnection(
        type="postgres",
        host=postgres_server.host,
        port=postgres_server.port,
        database=postgres_db,
        user=postgres_server.user,
        password_env=PASSWORD_ENV,
    )
