"""Sessions to a Cassandra cluster from a named connection, and the driver's errors as huntlab's."""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from huntlab.errors import ConfigError, ConnectorError, InputError, MissingDependency

if TYPE_CHECKING:
    from cassandra.cluster import Session

    from huntlab.config import CassandraConnection

# Keyspace and table names: Cassandra allows only these, quoted or not (quoting keeps case).
NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,48}$")
_SESSIONS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def driver() -> Any:
    """The cassandra driver module, or the error naming the extra that installs it."""
    try:
        import cassandra
        import cassandra.cluster  # noqa: F401 - fails here when the C extensions are broken
    except ImportError:
        raise MissingDependency("cassandra-driver", "cassandra") from None
    return cassandra


def check_name(name: str, what: str) -> str:
    """A keyspace or table name as Cassandra accepts it (letters, digits, _; at most 48)."""
    if not NAME_RE.match(name or ""):
        raise InputError(
            f"invalid Cassandra {what} name {name!r}",
            "Use 1-48 letters, digits or underscores (Cassandra allows nothing else)",
        )
    return name


def quote(name: str) -> str:
    """A CQL identifier, quoted by the driver when it must be (case, reserved words, symbols)."""
    from cassandra.metadata import protect_name

    return protect_name(name)


def consistency_level(name: str) -> int:
    """The driver's consistency level for a name such as 'LOCAL_QUORUM'."""
    from cassandra import ConsistencyLevel

    try:
        return ConsistencyLevel.name_to_value[name.upper()]
    except KeyError:
        known = ", ".join(ConsistencyLevel.name_to_value)
        raise ConfigError(
            f"unknown Cassandra consistency level {name!r}", f"Use one of: {known}"
        ) from None


def _connection_class() -> Any:
    # libev is C and fast; asyncore is gone from Python 3.12, so asyncio is the fallback.
    try:
        from cassandra.io.libevreactor import LibevConnection

        return LibevConnection
    except (ImportError, Exception):  # noqa: BLE001 - the reactor raises DependencyException
        from cassandra.io.asyncioreactor import AsyncioConnection

        return AsyncioConnection


def session_for(conn: CassandraConnection, timeout: float = 30.0) -> Session:
    """A connected session for a named connection, shared within the process.

    `timeout` bounds each request (seconds); connecting has its own 10 s limit.
    """
    driver()
    password = conn.password()
    key = (tuple(conn.contact_points), conn.port, conn.user, password, conn.local_dc, timeout)
    with _LOCK:
        session = _SESSIONS.get(key)
        if session is not None and not session.is_shutdown:
            return session
        session = _connect(conn, password, timeout)
        _SESSIONS[key] = session
        return session


def _connect(conn: CassandraConnection, password: str | None, timeout: float) -> Session:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
    from cassandra.query import tuple_factory

    policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=conn.local_dc))
    profile = ExecutionProfile(
        load_balancing_policy=policy,
        consistency_level=consistency_level(conn.consistency),
        request_timeout=timeout,
        row_factory=tuple_factory,
    )
    auth = PlainTextAuthProvider(conn.user, password or "") if conn.user else None
    cluster = Cluster(
        conn.contact_points,
        port=conn.port,
        auth_provider=auth,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connection_class=_connection_class(),
        connect_timeout=10.0,
        control_connection_timeout=10.0,
        protocol_version=5,
    )
    where = f"{','.join(conn.contact_points)}:{conn.port}"
    try:
        return cluster.connect()
    except Exception as exc:
        cluster.shutdown()
        raise connector_error(exc, f"connect to Cassandra at {where}") from exc


def close_all() -> None:
    """Shut every cached session down (tests; interpreter exit)."""
    with _LOCK:
        for session in _SESSIONS.values():
            session.cluster.shutdown()
        _SESSIONS.clear()


atexit.register(close_all)


def connector_error(exc: BaseException, doing: str) -> ConnectorError:
    """One-line ConnectorError for a driver exception, marked transient where a retry may help."""
    from cassandra import (
        AuthenticationFailed,
        InvalidRequest,
        OperationTimedOut,
        ReadTimeout,
        Unauthorized,
        Unavailable,
        WriteTimeout,
    )
    from cassandra.cluster import NoHostAvailable

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, NoHostAvailable):
        errors = list(exc.errors.values())
        if errors and all(isinstance(e, AuthenticationFailed) for e in errors):
            return ConnectorError(
                f"cannot {doing}: authentication failed",
                "Check user and password_env/password_file of the connection in huntlab.toml",
            )
        return ConnectorError(
            f"cannot {doing}: no host answered ({_first(errors) or text})",
            "Check that Cassandra runs and the connection's contact_points and port",
            transient=True,
        )
    if isinstance(exc, Unauthorized):
        return ConnectorError(f"cannot {doing}: not authorised ({text})", "Grant the role access")
    if isinstance(exc, (Unavailable, ReadTimeout, WriteTimeout, OperationTimedOut)):
        return ConnectorError(
            f"cannot {doing}: {type(exc).__name__} ({text})",
            "The cluster is overloaded or nodes are down; retry, or lower the consistency level",
            transient=True,
        )
    if isinstance(exc, InvalidRequest):
        return ConnectorError(f"cannot {doing}: {text}", "Check the keyspace, table and columns")
    return ConnectorError(f"cannot {doing}: {type(exc).__name__}: {text}")


def _first(errors: list[Any]) -> str:
    return f"{type(errors[0]).__name__}: {errors[0]}".splitlines()[0] if errors else ""


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn the driver's exceptions raised inside the block into ConnectorError."""
    from cassandra import DriverException
    from cassandra.cluster import NoHostAvailable

    try:
        yield
    except (DriverException, NoHostAvailable, OSError) as exc:
        raise connector_error(exc, doing) from exc
