"""Session fixture: one real Cassandra 5.0 node on loopback for every `cassandra` test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.cassandra_node import SUPERUSER, CassandraNode

PASSWORD_ENV = "HUNTLAB_TEST_CASSANDRA_PASSWORD"


@pytest.fixture(scope="session")
def cassandra_node() -> Iterator[CassandraNode]:
    """Start a node (about 10 s, ~0.6 GiB), wait until it answers CQL, stop it at the end."""
    # Its own temporary folder: pytest prunes old basetemps, which other runs may trigger.
    home = Path(tempfile.mkdtemp(prefix="huntlab-cassandra-"))
    node = CassandraNode.create(home / "node")
    node.start()
    try:
        yield node
    finally:
        from huntlab.connectors.cassandra_session import close_all

        close_all()  # the driver would keep reconnecting to the stopped node
        node.kill()  # its data is thrown away: no need for a graceful drain
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def cassandra_keyspace(cassandra_node: CassandraNode) -> str:
    """A keyspace with replication factor 1 for the tests' tables."""
    cassandra_node.query(
        "CREATE KEYSPACE IF NOT EXISTS huntlab_test WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    return "huntlab_test"


@pytest.fixture()
def cassandra_ws(empty_ws, cassandra_node: CassandraNode, cassandra_keyspace: str, monkeypatch):  # noqa: ANN001, ANN201 - pytest fixtures
    """A workspace whose huntlab.toml names the test node as connection 'cass'."""
    from huntlab.workspace import Workspace

    monkeypatch.setenv(PASSWORD_ENV, SUPERUSER[1])
    toml = empty_ws.root / "huntlab.toml"
    toml.write_text(
        toml.read_text()
        + "\n[connections.cass]\n"
        + 'type = "cassandra"\n'
        + 'contact_points = ["127.0.0.1"]\n'
        + f"port = {cassandra_node.native_port}\n"
        + f'keyspace = "{cassandra_keyspace}"\n'
        + 'consistency = "ONE"\n'
        + f'user = "{SUPERUSER[0]}"\n'
        + f'password_env = "{PASSWORD_ENV}"\n'
    )
    return Workspace(empty_ws.root)
