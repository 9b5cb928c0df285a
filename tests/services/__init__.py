"""Real services for tests (PostgreSQL, Cassandra, Spark standalone), started on loopback.

Each module here holds the session fixtures of one service; tests/conftest.py lists them in
`pytest_plugins`. Every fixture starts the real server, waits for it to answer, and stops it.
"""

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
