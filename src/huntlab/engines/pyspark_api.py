"""The PySpark DataFrame API on DuckDB through SQLFrame, with the gaps that jobs hit filled in."""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import operator
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import sqlframe
import sqlglot
from sqlframe.base import functions as base_functions
from sqlframe.base.column import Column
from sqlframe.base.decorators import func_metadata
from sqlframe.base.group import _BaseGroupedData
from sqlframe.base.session import _BaseSession
from sqlframe.duckdb import DuckDBCatalog, DuckDBDataFrame, DuckDBGroupedData, DuckDBSession
from sqlframe.duckdb import functions as F
from sqlframe.duckdb.udf import DuckDBUDFRegistration
from sqlglot import exp

from huntlab.errors import InputError, UnsupportedOnEngine

ENGINE = "duckdb"

KNOWN_GAPS: dict[str, str] = {
    "pivot().count()": "fixed: SQLFrame's PIVOT grouped by every input column (one row per "
    "event); a literal is counted now, and pivot columns keep the values' case ('DE').",
    "F.sum on integers": "fixed in groupBy().agg(), df.agg(), GroupedData.sum() and pivots: "
    "DuckDB's HUGEINT is cast to BIGINT (LongType); still HUGEINT under .over(w) or in select().",
    "F.get_json_object": "fixed: DuckDB kept JSON quotes ('\"x\"') and failed on invalid JSON; "
    "now the unquoted string, NULL for invalid JSON, as in Spark.",
    "cast('int') of 3.7": "fixed for float/double/decimal input: truncates to 3 as Spark does "
    "(DuckDB rounds to 4). The string '3.7' still fails; timestamp -> long is unsupported.",
    "timestamps with time zone": "Spark 'timestamp' is TIMESTAMPTZ, session time zone UTC; "
    "collect() gives naive UTC datetimes, toPandas() datetime64[us, UTC], both via Arrow "
    "since DuckDB needs the absent pytz to fetch TIMESTAMPTZ rows.",
    "column names": "unaliased aggregates are named like sum__hit_count__ (Spark: "
    "sum(hit_count)); select('window.start') gives 'window.start' (Spark: start). Alias them.",
    "F.udf": "a return value of the wrong type raises an error where PySpark gives NULL.",
    "F.parse_url": "URLs java.net.URI rejects (spaces, bad % escapes) give NULL as without "
    "ANSI mode; the QUERY key is matched literally, not as a regular expression.",
    "F.window": "tumbling and sliding, epoch-aligned as in Spark; a sliding window gives one row "
    "per overlapping window in select() and groupBy(). Month and year durations are rejected.",
    "one active session": "SQLFrame has one session per process; open_session(con) makes con's "
    "the active one (UDFs register there), so jobs on two connections must not interleave.",
    "unsupported": "functions SQLFrame lacks on DuckDB (F.url_decode, F.xxhash64, "
    "F.explode_outer...) and DataFrame.rdd, mapInPandas, mapInArrow, foreach, toJSON, "
    "groupBy().applyInPandas... raise UnsupportedOnEngine.",
}

_PARTS = ("HOST", "PATH", "QUERY", "PROTOCOL", "REF", "AUTHORITY", "FILE", "USERINFO")
_BAD_URL = re.compile(r"[\x00-\x20\"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})")
_UNIT_NAMES = ("microsecond", "millisecond", "second", "minute", "hour", "day", "week")
_UNITS = dict(zip(_UNIT_NAMES, itertools.accumulate((1, 1000, 1000, 60, 60, 24, 7), operator.mul)))
_DF_UNSUPPORTED = ("mapInPandas", "mapInArrow", "foreach", "foreachPartition", "toJSON")
_DF_UNSUPPORTED_PROPS = ("rdd", "writeStream")  # properties: DataFrame.__getattr__ makes columns
_GROUP_UNSUPPORTED = ("applyInPandas", "applyInArrow", "applyInPandasWithState", "cogroup")
_BORROWED = ("ilike", "array_agg", "string_agg", "date_part", "datepart")  # right on DuckDB
_UDF_OPTIONS: dict[str, Any] = {"null_handling": "special"}  # Spark passes None to Python UDFs
_DURATION = re.compile(r"(-?\d+)\s*([a-z]+?)s?\b")
_SLIDING = "huntlab_sliding_window"
_ids = itertools.count(1)
_lock = threading.RLock()
_depth = 0
_saved: dict[str, Any] = {}
_sessions: dict[int, DuckDBSession] = {}
_installed = False


def _unsupported(construct: str) -> Callable[..., Any]:
    """A stand-in that raises UnsupportedOnEngine for construct whenever it is called."""

    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedOnEngine(construct, ENGINE)

    raiser.__name__ = construct.rsplit(".", 1)[-1]
    return raiser


def _micros(duration: str) -> int:
    """Parse a Spark interval string such as '1 hour' or 'interval 90 seconds' to microseconds."""
    text = duration.strip().lower().removeprefix("interval").strip()
    total, pos = 0, 0
    for m in _DURATION.finditer(text):
        if text[pos : m.start()].strip() or m.group(2) not in _UNITS:
            break
        total, pos = total + int(m.group(1)) * _UNITS[m.group(2)], m.end()
    if not text or text[pos:].strip() or pos == 0:
        raise InputError(f"invalid window duration '{duration}'", "Write it like '10 minutes'")
    return total


def _anon(name: str, *args: Column) -> Column:
    return Column(exp.Anonymous(this=name, expressions=[a.column_expression for a in args]))


@func_metadata()
def window(timeColumn: Any, windowDuration: str, slideDuration: str | None = None,
           startTime: str | None = None) -> Column:  # fmt: skip
    """Spark's time window: a struct<start, end> per row, one row per overlapping window."""
    size = _micros(windowDuration)
    slide = _micros(slideDuration) if slideDuration else size
    offset = _micros(startTime) if startTime else 0
    if size <= 0 or slide <= 0 or slide > size or abs(offset) >= slide:
        raise InputError("invalid F.window", "Need 0 < slide <= window and |startTime| < slide")
    ts = Column.ensure_col(timeColumn)
    lag = (((_anon("EPOCH_US", ts) - F.lit(offset)) % slide) + slide) % slide  # ts - last start

    def bounds(back: Column) -> Column:
        start = ts - _anon("TO_MICROSECONDS", back)
        end = start + _anon("TO_MICROSECONDS", F.lit(size))
        return F.struct(start.alias("start"), end.alias("end"))

    if slide == size:
        return bounds(lag).alias("window")
    starts = [lag + F.lit(i * slide) for i in range(math.ceil(size / slide))]
    windows = [F.when(back < F.lit(size), bounds(back)) for back in starts]
    exploded = F.explode(F.array_compact(F.array(*windows)))
    exploded.column_expression.meta[_SLIDING] = True
    return exploded.alias("window")


def _group_by(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def group_by(self: DuckDBDataFrame, *cols: Any, **kwargs: Any) -> Any:
        cols = tuple(cols[0]) if cols and isinstance(cols[0], list) else cols
        sliding = [c for c in cols if _has(c, exp.Explode) and _SLIDING in c.column_expression.meta]
        if sliding:
            # GROUP BY cannot unnest, so expand one row per window first, as Spark's plan does.
            self = self.select("*", *sliding)
            named = {id(c): F.col(c.alias_or_name) for c in sliding}
            cols = tuple(named.get(id(c), c) for c in cols)
        return original(self, *cols, **kwargs)

    return group_by


def _duck_type(return_type: Any) -> str:
    """DuckDB type name for a pyspark.sql.types DataType (instance or class) or a DDL string."""
    if isinstance(return_type, type):
        return_type = return_type()
    ddl = return_type.simpleString() if hasattr(return_type, "simpleString") else str(return_type)
    return exp.DataType.build(ddl, dialect="spark").sql(dialect="duckdb")


class UserDefinedFunction:
    """A Python UDF, created on the active session's DuckDB connection when called; via Arrow."""

    def __init__(self, func: Callable[..., Any], returnType: Any = None, pandas: bool = False):
        self.func, self.returnType, self._pandas = func, returnType or "string", pandas
        self.deterministic = True
        self._type = _duck_type(self.returnType)
        self._arrow_type = duckdb.sql(f"SELECT NULL::{self._type} AS x").arrow().schema[0].type
        base = re.sub(r"\W", "_", getattr(func, "__name__", "udf"))
        self._name = f"huntlab_udf_{base}_{next(_ids)}"
        functools.update_wrapper(self, func)

    def asNondeterministic(self) -> UserDefinedFunction:
        """Mark the UDF as having side effects so DuckDB calls it for every row."""
        self.deterministic = False
        return self

    def _arrow(self, *arrays: pa.ChunkedArray) -> pa.Array:
        if self._pandas:
            result = self.func(*(a.to_pandas() for a in arrays))
            return pa.Array.from_pandas(result, type=self._arrow_type)
        rows = zip(*(a.to_pylist() for a in arrays))
        return pa.array([self.func(*row) for row in rows], type=self._arrow_type)

    def _register(self, con: duckdb.DuckDBPyConnection, nargs: int) -> None:
        impl, kind = (self._arrow, "arrow") if nargs else (self.func, "native")
        try:
            sql_type, effects = duckdb.sqltype(self._type), not self.deterministic
            params = None if nargs else []
            con.create_function(self._name, impl, params, sql_type, type=kind,
                                side_effects=effects, **_UDF_OPTIONS)  # fmt: skip
        except duckdb.NotImplementedException:
            pass  # already created on this connection

    def __call__(self, *cols: Any) -> Column:
        args = [Column.ensure_col(c) for c in cols]
        self._register(_BaseSession()._conn, len(args))
        call = _anon(self._name, *args)
        return call.alias(f"{self.__name__}({', '.join(a.alias_or_name for a in args)})")


def _register_udf(self: Any, name: str, f: Any, returnType: Any = None) -> UserDefinedFunction:
    """spark.udf.register: a UDF callable by name from SQL and from the DataFrame API."""
    fn = f if isinstance(f, UserDefinedFunction) else UserDefinedFunction(f, returnType)
    fn._name = name
    fn._register(self.sparkSession._conn, 1)
    return fn


def udf(f: Any = None, returnType: Any = "string", useArrow: bool | None = None) -> Any:
    """Spark's F.udf, as a call or a decorator (@udf, @udf("bigint"), @udf(returnType=...))."""
    if f is None or not callable(f) or hasattr(f, "simpleString"):
        rt = returnType if f is None else f
        return lambda func: UserDefinedFunction(func, rt)
    return UserDefinedFunction(f, returnType)


def pandas_udf(f: Any = None, returnType: Any = None, functionType: Any = None) -> Any:
    """Spark's F.pandas_udf for the Series -> Series form."""
    if f is not None and (not callable(f) or hasattr(f, "simpleString")):
        f, returnType = None, f
    if functionType not in (None, 200):  # 200 is PandasUDFType.SCALAR
        raise UnsupportedOnEngine(f"pandas_udf functionType={functionType}", ENGINE)

    def make(func: Callable[..., Any]) -> UserDefinedFunction:
        hint = str(inspect.signature(func).return_annotation)
        if hint != str(inspect.Signature.empty) and ("Series" not in hint or "Iterator" in hint):
            raise UnsupportedOnEngine(f"pandas_udf returning {hint}", ENGINE)
        return UserDefinedFunction(func, returnType, pandas=True)

    return make if f is None else make(f)


def _parse_url_one(url: str | None, part: str | None, key: str | None = None) -> str | None:
    """One URL part with java.net.URI's raw-component semantics, NULL when absent or invalid."""
    if url is None or part is None or _BAD_URL.search(url):
        return None
    try:
        u = urlsplit(url)
    except ValueError:
        return None
    scheme = url[: len(u.scheme)] or None  # urlsplit lower-cases the scheme; Java does not
    if scheme and not url[len(scheme) + 1 :].startswith("/"):  # opaque, like mailto:a@b
        return {"PROTOCOL": scheme, "REF": u.fragment if "#" in url else None}.get(part)
    query = u.query if "?" in url.partition("#")[0] else None
    authority = u.netloc if "//" in url.partition("?")[0] else None
    userinfo, _, hostport = (authority or "").rpartition("@")
    host = hostport[: hostport.find("]") + 1] if hostport[:1] == "[" else hostport.split(":")[0]
    if part == "QUERY" and key is not None:
        m = re.search(rf"(?:&|^){re.escape(key)}=([^&]*)", query or "")
        return m.group(1) if m else None
    file = u.path + (f"?{query}" if query is not None else "")
    ref = u.fragment if "#" in url else None
    found = (host or None, u.path, query, scheme, ref, authority, file, userinfo or None)
    return dict(zip(_PARTS, found)).get(part)


def _parse_url_arrow(*arrays: pa.ChunkedArray) -> pa.Array:
    rows = zip(*(a.to_pylist() for a in arrays))
    return pa.array([_parse_url_one(*row) for row in rows], type=pa.string())


@func_metadata()
def parse_url(url: Any, partToExtract: Any, key: Any = None) -> Column:
    """Spark's parse_url(url, part[, key]); str arguments are column names, as in PySpark."""
    args = [Column.ensure_col(c) for c in (url, partToExtract, key) if c is not None]
    return _anon("huntlab_parse_url", *args)


@func_metadata()
def get_json_object(col: Any, path: str) -> Column:
    """Spark's get_json_object: unquoted strings, JSON text for objects, NULL for invalid JSON."""
    c = Column.ensure_col(col)
    return F.when(_anon("JSON_VALID", c), _anon("JSON_EXTRACT_STRING", c, F.lit(path)))


def _has(e: Any, kind: type[exp.Expression]) -> bool:
    return isinstance(e, Column) and e.column_expression.find(kind) is not None


def _agg(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def agg(self: DuckDBGroupedData, *exprs: Any) -> Any:
        pivot = self.pivot_col is not None
        if pivot:  # DuckDB's PIVOT groups by every input column, and COUNT(*) selects them all
            star = [_has(e, exp.Count) and isinstance(e.column_expression.this, exp.Star)
                    for e in exprs]  # fmt: skip
            exprs = tuple(F.count(F.lit(1)).alias(e.alias_or_name) if s else e
                          for e, s in zip(exprs, star))  # fmt: skip
        summed = any("sum" in map(str.lower, e.values()) if isinstance(e, dict)
                     else _has(e, exp.Sum) for e in exprs)  # fmt: skip
        result = original(self, *exprs)
        return _respell(result, pivot) if summed or pivot else result

    return agg


def _respell(df: DuckDBDataFrame, pivot: bool) -> DuckDBDataFrame:
    """Cast DuckDB's HUGEINT integer sums to BIGINT (LongType); keep pivot values' case."""
    exprs = df._get_expressions(optimize=False)
    if len(exprs) != 1:
        return df
    try:
        types = [str(t) for t in df.session._conn.sql(df.session._to_sql(exprs[0])).types]
    except duckdb.Error:
        return df  # the error surfaces, with its context, when the job runs the query
    if not pivot and "HUGEINT" not in types:
        return df
    cols = [F.col(exp.column(n, quoted=True)) for n in df._columns]
    cols = [c.cast("bigint") if t == "HUGEINT" else c for c, t in zip(cols, types)]
    return df.select(*[c.alias(n) for c, n in zip(cols, df._columns)])


_INTEGRAL = {getattr(exp.DataType.Type, n) for n in ("TINYINT", "SMALLINT", "INT", "BIGINT")}
# Spark truncates fractions toward zero where DuckDB rounds; TYPEOF folds away at bind time.
_TRUNCATING_CAST = (
    "CASE WHEN TYPEOF(x) IN ('FLOAT', 'DOUBLE') THEN CAST(TRUNC(TRY_CAST(x AS DOUBLE)) AS {t}) "
    "WHEN TYPEOF(x) LIKE 'DECIMAL%' THEN CAST(TRUNC(TRY_CAST(x AS DECIMAL(38, 9))) AS {t}) "
    "ELSE CAST(x AS {t}) END")  # fmt: skip


def _cast(original: Callable[..., Column]) -> Callable[..., Column]:
    @functools.wraps(original)
    def cast(self: Column, dataType: Any, dialect: Any = None) -> Column:
        out = original(self, dataType, dialect)
        to = out.expression.args.get("to")
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith(("sqlframe", __name__)) or to is None or to.this not in _INTEGRAL:
            return out
        template = sqlglot.parse_one(_TRUNCATING_CAST.format(t=to.sql("duckdb")), read="duckdb")
        x = self.column_expression
        case = template.transform(lambda n: x.copy() if isinstance(n, exp.Column) else n)
        name = out.expression.alias_or_name
        return Column(case).alias(name) if name else Column(case)

    return cast


def _get_columns(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def get_columns(self: DuckDBCatalog, table: Any) -> dict[str, Any]:
        # SQLFrame looks only outside DuckDB's temp catalog, where con.register() puts datasets.
        found = original(self, table)
        name = self.ensure_table(table).sql(dialect=self.session.input_dialect)
        dialect = self.session.output_dialect
        cols = [] if found else self.listColumns(name, include_temp=True)
        return found or {c.name: exp.DataType.build(c.dataType, dialect=dialect) for c in cols}

    return get_columns


def _install() -> None:
    """Fill SQLFrame's DuckDB functions module and classes with the PySpark parts jobs need."""
    global _installed
    if _installed:
        return
    for name, fn in inspect.getmembers(base_functions, inspect.isfunction):
        if hasattr(fn, "unsupported_engines") and not hasattr(F, name):
            setattr(F, name, fn if name in _BORROWED else _unsupported(f"F.{name}"))
    F.window, F.udf, F.pandas_udf, F.get_json_object = window, udf, pandas_udf, get_json_object
    F.parse_url = F.try_parse_url = parse_url
    F.broadcast = lambda df: df  # a join hint; DuckDB plans joins itself
    F.isnotnull = lambda col: Column.ensure_col(col).isNotNull()
    for name in _DF_UNSUPPORTED:
        setattr(DuckDBDataFrame, name, _unsupported(f"DataFrame.{name}"))
    for name in _DF_UNSUPPORTED_PROPS:
        setattr(DuckDBDataFrame, name, property(_unsupported(f"DataFrame.{name}")))
    for name in _GROUP_UNSUPPORTED:
        setattr(DuckDBGroupedData, name, _unsupported(f"groupBy().{name}"))
    DuckDBDataFrame.groupBy = DuckDBDataFrame.groupby = _group_by(DuckDBDataFrame.groupBy)
    DuckDBGroupedData.agg = _agg(_BaseGroupedData.agg)
    DuckDBDataFrame.toPandas = lambda self: to_arrow(self).to_pandas()
    DuckDBUDFRegistration.register = _register_udf
    Column.cast = Column.astype = _cast(Column.cast)
    DuckDBCatalog.get_columns = _get_columns(DuckDBCatalog.get_columns)
    _installed = True


class _Cursor:
    """The connection as SQLFrame's cursor; TIMESTAMPTZ rows come via Arrow (DuckDB needs pytz)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, *args: Any, **kwargs: Any) -> _Cursor:
        self._con.execute(*args, **kwargs)
        return self

    def fetch_arrow_table(self) -> pa.Table:
        return self._con.to_arrow_table()

    def fetchall(self) -> list[tuple[Any, ...]]:
        tz = [i for i, d in enumerate(self._con.description or []) if "TIME ZONE" in str(d[1])]
        if not tz:
            return self._con.fetchall()
        table = self._con.to_arrow_table()
        cols = [table.column(i).to_pylist() if i in tz else None for i in range(table.num_columns)]
        rest = [i for i in range(table.num_columns) if i not in tz]
        if rest:
            plain = duckdb.from_arrow(table.select(rest)).fetchall()
            for j, i in enumerate(rest):
                cols[i] = [row[j] for row in plain]
        return list(zip(*cols)) if cols else []


def open_session(con: duckdb.DuckDBPyConnection) -> DuckDBSession:
    """The SQLFrame DuckDBSession on con (time zone UTC), made the active session."""
    with _lock:
        _install()
        for key, old in list(_sessions.items()):
            try:
                old._conn.cursor().close()  # raises once closed; leaves pending results alone
            except duckdb.ConnectionException:
                getattr(old, "_udf_conn", old._conn).close()  # it would keep the database open
                del _sessions[key]
        session = _sessions.get(id(con))
        if session is None:
            # SQLFrame keeps one session per process and can build only one per connection.
            _BaseSession._instance = None
            session = _sessions[id(con)] = DuckDBSession(conn=con)
            session.__dict__["_cur"] = _Cursor(con)
            varchar = duckdb.sqltype("VARCHAR")
            con.create_function("huntlab_parse_url", _parse_url_arrow, None, varchar,
                                type="arrow", **_UDF_OPTIONS)  # fmt: skip
        _BaseSession._instance = session
        DuckDBSession.builder.__dict__.pop("session", None)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def _pyspark_modules() -> dict[str, Any]:
    return {k: v for k, v in sys.modules.items() if k == "pyspark" or k.startswith("pyspark.")}


@contextmanager
def activated(con: duckdb.DuckDBPyConnection) -> Iterator[DuckDBSession]:
    """Make `import pyspark.sql` resolve to SQLFrame on con for the block; restore sys.modules."""
    global _depth, _saved
    session = open_session(con)
    with _lock:
        _depth += 1
        if _depth == 1:
            _saved = _pyspark_modules()
            sqlframe.activate(engine=ENGINE, conn=con)
    try:
        yield session
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name in _pyspark_modules():
                    del sys.modules[name]  # so deactivate() does not import a real pyspark
                sqlframe.deactivate()
                for name in _pyspark_modules():
                    del sys.modules[name]
                sys.modules.update(_saved)


def to_arrow(df: DuckDBDataFrame) -> pa.Table:
    """Run a SQLFrame DataFrame and return its rows as an Arrow table, without pandas."""
    session = df.session
    exprs = df._get_expressions(optimize=False)
    for expression in exprs[:-1]:
        session._execute(session._to_sql(expression))
    return session._conn.execute(session._to_sql(exprs[-1])).to_arrow_table()
