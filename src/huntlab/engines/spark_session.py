"""Spark sessions for the spark engine: configured for the machine, quiet, one per process.

A JVM holds one SparkContext, and starting one costs seconds, so sessions are cached per process
and reused by every SparkEngine with the same settings; other settings stop it and start anew.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huntlab.errors import ConfigError, EngineError, MissingDependency

if TYPE_CHECKING:
    from huntlab.config import EngineConfig

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""
_lock = threading.RLock()
_current: dict[str, Any] = {"key": None, "session": None}


def jars_dir() -> Path:
    """Where `.ci/setup-spark.sh` resolves extra jars (override with HUNTLAB_SPARK_JARS)."""
    env = os.environ.get("HUNTLAB_SPARK_JARS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / ".cache" / "jars"


def _log4j_file() -> Path:
    """huntlab's log4j2 settings for Spark's JVMs: errors only, so job output stays readable."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "huntlab-spark-log4j2.properties"
    if not path.is_file() or path.read_text() != _LOG4J:
        path.write_text(_LOG4J)
    return path


def _local_cores(master: str) -> int:
    """The cores of local, local[N], local[*] or local[N, retries]."""
    inner = (master.removeprefix("local").strip("[]") or "1").split(",")[0].strip()
    if inner == "*":
        return os.cpu_count() or 2
    if not inner.isdigit() or int(inner) < 1:
        raise ConfigError(f"invalid Spark master '{master}'", "Write local[N], N >= 1, or local[*]")
    return int(inner)


def session_conf(cfg: EngineConfig) -> dict[str, str]:
    """The Spark settings huntlab uses for a configuration (user `spark_conf` wins)."""
    master = cfg.master
    local = master.startswith("local")
    partitions = cfg.shuffle_partitions or (2 * _local_cores(master) if local else 32)
    java_opts = f"-Dlog4j2.configurationFile=file:{_log4j_file()} -Duser.timezone=UTC"
    conf = {
        "spark.app.name": "huntlab",
        "spark.driver.memory": cfg.driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "true",
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.default.parallelism": str(partitions),
        "spark.sql.ansi.enabled": "false",  # huntlab's SQL semantics (see transpile.py)
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": java_opts,
        "spark.executor.extraJavaOptions": java_opts,
        "spark.executorEnv.TZ": "UTC",
        "spark.sql.warehouse.dir": str(Path(os.environ.get("TMPDIR", "/tmp")) / "huntlab-spark"),
    }
    if cfg.executor_memory:
        conf["spark.executor.memory"] = cfg.executor_memory
    jars = sorted(str(p) for p in jars_dir().glob("*.jar")) if jars_dir().is_dir() else []
    if jars:
        conf["spark.jars"] = ",".join(jars)
    conf.update({k: str(v) for k, v in cfg.spark_conf.items()})
    return {k: v for k, v in conf.items() if v != ""}


def get_session(cfg: EngineConfig) -> Any:
    """The process's Spark session for this configuration, started (or restarted) if needed."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingDependency("pyspark", "spark") from exc
    master = cfg.master
    if not master.startswith(("local", "spark://", "sc://")):
        raise ConfigError(
            f"unknown Spark master '{master}'",
            "Use local[N], spark://host:port (standalone) or sc://host:port (Spark Connect)",
        )
    conf = session_conf(cfg)
    key = (master, tuple(sorted(conf.items())))
    with _lock:
        if _current["key"] == key and _alive(_current["session"]):
            return _current["session"]
        stop_session()
        if master.startswith(("local", "spark://127.0.0.1", "spark://localhost")):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python
        os.environ["TZ"] = "UTC"  # Python workers turn timestamps into naive UTC datetimes
        if not master.startswith("sc://"):
            # A Spark Connect session earlier in this process leaves PySpark in Connect mode
            # (an environment flag and options on the shared builder): start classic afresh.
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
            os.environ.pop("SPARK_REMOTE", None)
        builder = SparkSession.Builder()
        builder = builder.remote(master) if master.startswith("sc://") else builder.master(master)
        for k, v in conf.items():
            if not master.startswith("sc://") or _runtime_sql_conf(k, cfg):
                builder = builder.config(k, v)
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            raise EngineError(
                f"could not start Spark at master {master}: {_first_line(exc)}",
                "Check [engine] master in huntlab.toml, that Java 17 is installed and the "
                "cluster is reachable",
            ) from exc
        if not master.startswith("sc://"):
            session.sparkContext.setLogLevel("ERROR")
        _current.update(key=key, session=session)
        return session


def _runtime_sql_conf(key: str, cfg: EngineConfig) -> bool:
    """Settings a Spark Connect client may set: SQL ones, not static ones like the warehouse."""
    if key in cfg.spark_conf:
        return True
    return key.startswith("spark.sql.") and "warehouse" not in key and "pyspark" not in key


def _alive(session: Any) -> bool:
    if session is None:
        return False
    try:
        sc = getattr(session, "sparkContext", None)
        return sc is None or sc._jsc is not None
    except Exception:  # noqa: BLE001 - a Connect session has no SparkContext
        return True


def stop_session() -> None:
    """Stop the cached Spark session (tests call it before switching masters)."""
    with _lock:
        session = _current["session"]
        _current.update(key=None, session=None)
        if session is not None:
            try:
                session.stop()
            except Exception:  # noqa: BLE001 - stopping a dead session may fail; it is gone
                pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__


atexit.register(stop_session)
