"""Real services for tests (PostgreSQL, Cassandra, Spark standalone), started on loopback.

Each module here holds the session fixtures of one service; tests/conftest.py lists them in
`pytest_plugins`. Every fixture starts the real server, waits for it to answer, and stops it.
"""

from huntlab.net import free_port

__all__ = ["free_port"]
