"""Spark SQL (HiveQL dialect) to DuckDB: sqlglot's transpiler plus the fixes that keep Spark's answers.

Target semantics are Spark 4 with spark.sql.ansi.enabled=false, the mode huntlab jobs are written
for: a failed CAST gives NULL, integer casts truncate toward zero (and wrap on overflow), size(NULL)
is -1, NULLs sort first ascending and last descending, and the session time zone is UTC. Where
DuckDB cannot give Spark's answer the statement is refused with UnsupportedOnEngine (KNOWN_GAPS).
"""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.spark import Spark
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError

from huntlab.errors import HuntlabError, SqlError, UnsupportedOnEngine

__all__ = ["KNOWN_GAPS", "install_macros", "parameter_names", "to_duckdb"]

_HINT = "Check the statement; huntlab SQL jobs are written in Spark SQL"

KNOWN_GAPS: dict[str, str] = {
    "LATERAL VIEW inline/stack": "generators other than explode, posexplode and json_tuple",
    "split with a positive limit": "DuckDB cannot stop splitting after N parts",
    "PIVOT with count or other aggregates": "Spark yields NULL or 0 for empty cells depending on "
    "its plan; only sum, avg, min and max pivot identically",
    "PIVOT with several unaliased aggregates": "Spark and DuckDB name the columns differently",
    "PIVOT over several columns or non-literal values": "column naming cannot be guaranteed",
    "get_json_object with a wildcard path": "Spark's [*] result shapes have no DuckDB equivalent",
    "date pattern letters other than y M L d D H h m s S a E": "no strftime equivalent",
    "date pattern that is not a string literal": "the Java pattern must be translated up front",
    "datediff/timestampdiff with a unit": "DuckDB counts boundaries, Spark counts whole units",
    "months_between": "Spark rounds to 8 digits and counts the time of day",
    "from_utc_timestamp/to_utc_timestamp": "time zone shifting differs",
    "hash": "DuckDB's hash is not Spark's Murmur3",
    "format_string/printf": "Java Formatter semantics",
    "percentile with a frequency": "no DuckDB equivalent",
    "bround": "DuckDB has no HALF_EVEN rounding function",
    "crc32": "no DuckDB equivalent",
    "str_to_map": "no DuckDB equivalent",
    "regexp_replace with a non-literal replacement": "Java's $n syntax is rewritten up front",
    "from_json": "Spark's DDL schema strings have no DuckDB equivalent",
}

_INTS = {  # Spark integral type -> (macro suffix, DuckDB type, bits)
    exp.DataType.Type.TINYINT: ("tinyint", "TINYINT", 8),
    exp.DataType.Type.SMALLINT: ("smallint", "SMALLINT", 16),
    exp.DataType.Type.INT: ("int", "INTEGER", 32),
    exp.DataType.Type.BIGINT: ("bigint", "BIGINT", 64),
}
_REFUSED_FUNCS = {
    "hash": "hash",
    "printf": "format_string/printf",
    "months_between": "months_between",
    "inline_outer": "LATERAL VIEW inline/stack",
    "bround": "bround",
    "crc32": "crc32",
}
_JAVA_TIME = {
    "yyyy": "%Y", "yyy": "%Y", "yy": "%y", "y": "%Y", "MMMM": "%B", "MMM": "%b", "MM": "%m",
    "M": "%-m", "dd": "%d", "d": "%-d", "DDD": "%j", "D": "%-j", "HH": "%H", "H": "%-H",
    "hh": "%I", "h": "%-I", "mm": "%M", "m": "%-M", "ss": "%S", "s": "%-S", "SSS": "%g",
    "SSSSSS": "%f", "SSSSSSSSS": "%n", "a": "%p", "E": "%a", "EE": "%a", "EEE": "%a",
    "EEEE": "%A", "LLLL": "%B", "LLL": "%b", "LL": "%m", "L": "%-m",
}  # fmt: skip
_JAVA_TOKEN = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|(.)", re.S)
_JSON_STEP = re.compile(r"\.([^.\[]+)|\['([^']*)'\]|\[(\d+)\]")
_DEFAULT_TS = "yyyy-MM-dd HH:mm:ss"


def _keep(name: str) -> Any:
    return lambda args: exp.Anonymous(this=name, expressions=args)


class _SparkIn(Spark):
    """Spark, but functions taking Java patterns or JSON paths keep their raw arguments."""

    class Parser(Spark.Parser):
        FUNCTIONS = {
            **Spark.Parser.FUNCTIONS,
            **{
                n.upper(): _keep(n)
                for n in (
                    "unix_timestamp",
                    "to_unix_timestamp",
                    "from_unixtime",
                    "to_date",
                    "to_timestamp",
                    "date_format",
                    "get_json_object",
                    "percentile",
                )  # fmt: skip
            },
        }


class _DuckOut(DuckDB):
    """DuckDB, with every ORDER BY key saying where its NULLs go."""

    class Generator(DuckDB.Generator):
        def ordered_sql(self, expression: exp.Ordered) -> str:
            sql = super().ordered_sql(expression)
            return sql if sql.endswith("NULLS FIRST") else f"{sql} NULLS LAST"


def to_duckdb(sql: str) -> str:
    """Transpile one Spark SQL query to DuckDB SQL that gives Spark's answer."""
    try:
        tree = _parse(sql)
        _check_pivots(tree)
        for node in reversed(list(tree.walk(bfs=False))):  # children before their parents
            new = _fix(node)
            if new is not None and new is not node:
                node.replace(new)
        generators = {id(g): g for g in tree.find_all(*_GENERATORS) if not _in_lambda(g)}
        for select in list(tree.find_all(exp.Select)):
            for gen in _rewrite_lateral_views(select) + _rewrite_select_generators(select):
                generators.pop(id(gen), None)
        for gen in generators.values():
            raise UnsupportedOnEngine(f"{gen.sql_name().lower()} outside a SELECT list", "duckdb")
        return tree.sql(dialect=_DuckOut, unsupported_level=ErrorLevel.RAISE)
    except HuntlabError:
        raise
    except UnsupportedError as exc:
        raise UnsupportedOnEngine(str(exc).splitlines()[0].rstrip("."), "duckdb") from None
    except Exception as exc:  # sqlglot raises a variety of errors on odd input
        raise SqlError(f"could not translate the statement: {exc}", _HINT) from None


def parameter_names(sql: str) -> set[str]:
    """Names of the :name parameter markers in a Spark SQL statement."""
    try:
        tree = _parse(sql)
    except HuntlabError:
        raise
    except Exception as exc:
        raise SqlError(f"could not read the statement: {exc}", _HINT) from None
    return {p.name for p in tree.find_all(exp.Placeholder) if p.name}


# -- parsing and syntax errors ---------------------------------------------------------------


def _parse(sql: str) -> exp.Expression:
    if not isinstance(sql, str):
        raise SqlError("the SQL statement must be text", _HINT)
    try:
        trees = [t for t in sqlglot.parse(sql, read=_SparkIn) if t is not None]
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        near = str(err.get("highlight") or "").strip()
        line, col = err.get("line") or 1, err.get("col") or 1
        col = max(1, col - len(near) + 1) if near else col
        near = near or (sql.splitlines()[line - 1] if sql.splitlines() else sql)[:30]
        detail = err.get("description") or str(exc).splitlines()[0]
        raise _syntax_error(line, col, near, detail) from None
    except TokenError as exc:
        raise _token_error(sql, exc) from None
    if not trees:
        raise SqlError("the SQL statement is empty", _HINT)
    if len(trees) > 1:
        raise SqlError(
            f"{len(trees)} statements found; a SQL job runs exactly one query",
            "Split the statements into separate jobs, or combine them with WITH ... SELECT",
        )
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        kind = (tree.key if not isinstance(tree, exp.Command) else tree.name).upper()
        raise SqlError(f"only queries (SELECT or WITH ... SELECT) can run, not {kind}", _HINT)
    for p in tree.find_all(exp.Placeholder):
        if not p.name:
            raise SqlError("positional parameter markers (?) are not supported",
                           "Use named markers such as :name and pass them with --param")  # fmt: skip
    return tree


def _syntax_error(line: int, col: int, near: str, detail: str) -> SqlError:
    return SqlError(f"SQL syntax error at line {line}, column {col} near '{near}': {detail}", _HINT)


def _token_error(sql: str, exc: TokenError) -> SqlError:
    m = re.search(r"Missing (.+) from \d+:(\d+)", str(exc.__cause__ or ""))
    offset = int(m.group(2)) if m else min(len(sql), (exc.start or 0) + 50)
    offset = min(offset, max(len(sql) - 1, 0))
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    near = (sql[offset:].splitlines() or [""])[0][:30]
    detail = f"missing closing {m.group(1)}" if m else "cannot read the text"
    return _syntax_error(line, col, near, detail)


# -- expression fixes (children are fixed before their parents) -------------------------------


def _call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _fix(node: exp.Expression) -> exp.Expression | None:
    if isinstance(node, exp.Anonymous):
        return _fix_function(node, node.name.lower(), node.expressions)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return _fix_cast(node)
    # sum() is left as DuckDB's: a typed macro cannot see an aggregate's type and cast double
    # sums to integers; integer sums are HUGEINT here and BIGINT once the runner normalises.
    if type(node) is exp.Quantile:  # Spark's percentile interpolates, and is DOUBLE
        return exp.cast(_call("quantile_cont", node.this, node.args["quantile"]), "DOUBLE")
    if isinstance(node, (exp.ArrayAgg, exp.ArrayUniqueAgg)):  # Spark: [] for no rows, not NULL
        return _wrap_aggregate(node, lambda agg: exp.Coalesce(this=agg, expressions=[exp.Array()]))
    if isinstance(node, (exp.Like, exp.ILike)) and not isinstance(node.parent, exp.Escape):
        return exp.Escape(this=node.copy(), expression=exp.Literal.string("\\"))
    if isinstance(node, exp.TsOrDsToDate) and not node.args.get("format"):
        return _call("spark_to_date", node.this)
    if isinstance(node, exp.TsOrDsAdd) and node.text("unit").upper() in ("", "DAY"):
        return _call("spark_date_add", node.this, node.expression)
    if isinstance(node, exp.AddMonths):
        return exp.cast(node.copy(), "DATE")
    if isinstance(node, exp.DayOfWeek):  # Spark: Sunday=1, DuckDB: Sunday=0
        return exp.Add(this=node.copy(), expression=exp.Literal.number(1))
    if isinstance(node, exp.Extract) and node.text("this").upper() in ("DOW", "DAYOFWEEK"):
        return exp.Add(this=node.copy(), expression=exp.Literal.number(1))
    if isinstance(node, (exp.DateDiff, exp.TimestampDiff)) and (
        isinstance(node, exp.TimestampDiff) or node.args.get("unit")
    ):
        raise UnsupportedOnEngine("datediff/timestampdiff with a unit", "duckdb")
    if isinstance(node, (exp.AtTimeZone, exp.FromTimeZone)):
        raise UnsupportedOnEngine("from_utc_timestamp/to_utc_timestamp", "duckdb")
    if isinstance(node, exp.Format):
        raise UnsupportedOnEngine("format_string/printf", "duckdb")
    if isinstance(node, exp.MonthsBetween):  # was computed silently with DuckDB's semantics
        raise UnsupportedOnEngine("months_between", "duckdb")
    if isinstance(node, exp.StrToMap):
        raise UnsupportedOnEngine("str_to_map", "duckdb")
    if isinstance(node, exp.FromJson):
        raise UnsupportedOnEngine("from_json", "duckdb")
    if isinstance(node, exp.Exists) and isinstance(node.expression, exp.Lambda):
        return _fix_array_exists(node)
    if isinstance(node, exp.RegexpReplace) and node.args.get("replacement") is not None:
        _fix_replacement(node)
    if type(node) in _MACRO_CALLS:
        name, keys = _MACRO_CALLS[type(node)]
        return _call(name, *[node.args[k] for k in keys if node.args.get(k) is not None])
    if isinstance(node, exp.ArraySize):
        return _fix_size(node.this)
    if isinstance(node, exp.ConcatWs):
        return _fix_concat_ws(node.expressions)
    if isinstance(node, exp.RegexpSplit) and node.args.get("limit") is not None:
        limit = node.args["limit"]
        if not (limit.is_int and int(limit.name) <= 0) and not (
            isinstance(limit, exp.Neg) and limit.this.is_int
        ):
            raise UnsupportedOnEngine("split with a positive limit", "duckdb")
        node.set("limit", None)
    return None


_MACRO_CALLS: dict[type, tuple[str, tuple[str, ...]]] = {
    exp.ParseUrl: ("parse_url", ("this", "part_to_extract", "key")),
    exp.ArrayContains: ("spark_array_contains", ("this", "expression")),
    exp.IntDiv: ("spark_div", ("this", "expression")),
    exp.ArrayDistinct: ("spark_array_distinct", ("this",)),
    exp.ArrayPosition: ("spark_array_position", ("this", "expression")),
    exp.Substring: ("spark_substr", ("this", "start", "length")),
}


def _wrap_aggregate(node: exp.Expression, wrap: Any) -> exp.Expression:
    top = node
    while isinstance(top.parent, (exp.Window, exp.Filter, exp.IgnoreNulls, exp.RespectNulls)):
        top = top.parent
    top.replace(wrap(top.copy()))
    return node


def _fix_cast(node: exp.Cast) -> exp.Expression | None:
    to, arg = node.args["to"], node.this
    if to.this in _INTS and not (arg.is_int and _fits(int(arg.name), _INTS[to.this][2])):
        suffix = _INTS[to.this][0]
        strict = isinstance(node, exp.TryCast) and node.args.get("safe")
        return _call(f"spark_{'try_' if strict else ''}cast_{suffix}", arg)
    if isinstance(arg, exp.Literal) and not arg.is_string:
        return None
    if to.this == exp.DataType.Type.DATE and not isinstance(arg, exp.Literal):
        return _call("spark_to_date", arg)
    if to.this in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR) and not to.expressions:
        return _call("spark_cast_string", arg)
    if to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT):
        value = _call("spark_cast_double", arg)
        return value if to.this == exp.DataType.Type.DOUBLE else exp.cast(value, "FLOAT")
    if to.this == exp.DataType.Type.BOOLEAN:
        return _call("spark_cast_boolean", arg)
    if to.this == exp.DataType.Type.TIMESTAMP and not isinstance(arg, exp.Literal):
        return _call("spark_cast_timestamp", arg)
    return None


def _fix_array_exists(node: exp.Exists) -> exp.Expression:
    """Spark's exists(array, x -> p): three-valued, false for an empty array."""
    tests = exp.Transform(this=node.this.copy(), expression=node.expression.copy())
    body = ("CASE WHEN __a IS NULL THEN NULL WHEN list_bool_or(__t) THEN true "
            "WHEN list_position(__t, NULL) IS NOT NULL THEN NULL ELSE false END")  # fmt: skip
    return _duck(body, a=node.this, t=tests)


def _fix_replacement(node: exp.RegexpReplace) -> None:
    """Java's replacement syntax ($1 groups, backslash escapes) as RE2's (\\1 groups)."""
    rep = node.args["replacement"]
    if not (isinstance(rep, exp.Literal) and rep.is_string):
        raise UnsupportedOnEngine("regexp_replace with a non-literal replacement", "duckdb")
    text, out, i = rep.name, [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append("\\\\" if text[i + 1] == "\\" else text[i + 1])
            i += 2
            continue
        m = re.match(r"\$(\d)", text[i:])
        out.append("\\" + m.group(1) if m else ("\\\\" if ch == "\\" else ch))
        i += 2 if m else 1
    node.set("replacement", exp.Literal.string("".join(out)))


def _fits(value: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


def _fix_size(arg: exp.Expression) -> exp.Expression:
    # arrays built in the query are known to be lists; anything else may be a map
    known = (exp.Array, exp.RegexpSplit, exp.Split, exp.ArrayAgg, exp.ArrayUniqueAgg)
    if isinstance(arg, known) or (isinstance(arg, exp.Coalesce) and isinstance(arg.this, known)):
        return exp.Coalesce(this=_call("len", arg), expressions=[exp.Literal.number(-1)])
    return _call("spark_size", arg)


def _fix_concat_ws(args: list[exp.Expression]) -> exp.Expression | None:
    sep, parts = args[0], args[1:]
    if all(isinstance(a, exp.Literal) for a in parts):
        return None
    lists = exp.Array(expressions=[_call("spark_cws_list", a) for a in parts])
    body = "CASE WHEN __s IS NULL THEN NULL ELSE array_to_string(flatten(__l), __s) END"
    return _duck(body, s=sep, l=lists)


def _fix_function(node: exp.Anonymous, name: str, args: list[exp.Expression]) -> Any:
    if name in _REFUSED_FUNCS:
        raise UnsupportedOnEngine(_REFUSED_FUNCS[name], "duckdb")
    if name in ("unix_timestamp", "to_unix_timestamp"):
        if not args:
            return _duck("CAST(floor(epoch(current_timestamp)) AS BIGINT)")
        return _call("spark_unix_timestamp", args[0], _strftime(args[1:], _DEFAULT_TS))
    if name == "from_unixtime":
        return _call("spark_from_unixtime", args[0], _strftime(args[1:], _DEFAULT_TS))
    if name in ("to_date", "to_timestamp"):
        extra = [_strftime(args[1:], "")] if len(args) > 1 else []
        return _call(f"spark_{name}", args[0], *extra)
    if name == "date_format":
        return _call("spark_date_format", args[0], _strftime(args[1:], ""))
    if name == "get_json_object" and len(args) == 2:
        return _json_get(args[0], args[1])
    if name == "percentile":  # Spark interpolates between values, like quantile_cont
        if len(args) != 2:
            raise UnsupportedOnEngine("percentile with a frequency", "duckdb")
        return exp.cast(_call("quantile_cont", *args), "DOUBLE")
    if name == "weekday":  # Spark: Monday=0
        return _duck("isodow(spark_to_date(__x)) - 1", x=args[0])
    if name == "date_part" and args and args[0].name.lower() in ("dow", "dayofweek"):
        return exp.Add(this=node.copy(), expression=exp.Literal.number(1))
    if name == "url_decode":  # Java's URLDecoder turns '+' into a space
        return _duck("url_decode(replace(__x, '+', ' '))", x=args[0])
    if name == "url_encode":  # Java's URLEncoder: space as '+', '*' kept, '~' escaped
        return _duck("replace(replace(replace(url_encode(__x), '~', '%7E'), '%20', '+'), '%2A', '*')",
                     x=args[0])  # fmt: skip
    return None


def _strftime(args: list[exp.Expression], default: str) -> exp.Expression:
    if not args and default:
        return exp.Literal.string(_java_to_strftime(default))
    if len(args) != 1 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
        raise UnsupportedOnEngine("date pattern that is not a string literal", "duckdb")
    return exp.Literal.string(_java_to_strftime(args[0].name))


def _java_to_strftime(pattern: str) -> str:
    out = []
    for m in _JAVA_TOKEN.finditer(pattern):
        quoted, letters, other = m.group(1), m.group(0) if m.group(2) else None, m.group(3)
        if quoted is not None:
            out.append(quoted.replace("''", "'").replace("%", "%%") or "'")
        elif letters is not None:
            if letters not in _JAVA_TIME:
                raise UnsupportedOnEngine(f"date pattern letters '{letters}'", "duckdb")
            out.append(_JAVA_TIME[letters])
        else:
            out.append("%%" if other == "%" else other)
    return "".join(out)


def _json_get(doc: exp.Expression, path: exp.Expression) -> exp.Expression:
    if not (isinstance(path, exp.Literal) and path.is_string):
        guard = "__p LIKE '$%' AND __p NOT LIKE '%*%'"
        return _duck(f"CASE WHEN {guard} THEN spark_get_json(__j, __p) END", j=doc, p=path)
    duck_path = _json_path(path.name)
    if duck_path is None:  # Spark answers NULL for a path it cannot parse
        return exp.cast(exp.Null(), "VARCHAR")
    return _call("spark_get_json", doc, exp.Literal.string(duck_path))


def _json_path(path: str) -> str | None:
    if "*" in path:
        raise UnsupportedOnEngine("get_json_object with a wildcard path", "duckdb")
    if not path.startswith("$"):
        return None
    out, pos = ["$"], 1
    while pos < len(path):
        m = _JSON_STEP.match(path, pos)
        if not m:
            return None
        key = m.group(1) if m.group(1) is not None else m.group(2)
        out.append(_json_key(key) if key is not None else f"[{m.group(3)}]")
        pos = m.end()
    return "".join(out)


def _json_key(key: str) -> str:
    if '"' in key or "\\" in key:
        raise UnsupportedOnEngine("JSON keys containing quotes or backslashes", "duckdb")
    return f'."{key}"'


def _duck(template: str, **parts: exp.Expression) -> exp.Expression:
    """A DuckDB expression or statement from a template whose __name columns are parts."""
    tree = sqlglot.parse_one(template, read="duckdb")
    for col in list(tree.find_all(exp.Column)):
        if col.name.startswith("__") and not col.table:
            col.replace(parts[col.name[2:]].copy())
    return tree


# -- PIVOT, LATERAL VIEW and generators in the SELECT list ----------------------------------


def _check_pivots(tree: exp.Expression) -> None:
    for pivot in tree.find_all(exp.Pivot):
        if pivot.args.get("unpivot"):
            continue  # DuckDB's UNPIVOT drops NULLs and orders columns as Spark does
        fields = pivot.args.get("fields") or []
        values = fields[0].expressions if len(fields) == 1 else []
        if (
            not values
            or not isinstance(fields[0].this, exp.Column)
            or not all(
                isinstance(v.this if isinstance(v, exp.PivotAlias) else v, exp.Literal)
                for v in values
            )
        ):
            raise UnsupportedOnEngine("PIVOT over several columns or non-literal values", "duckdb")
        aggs = pivot.expressions
        for agg in aggs:
            if not isinstance(agg.unalias(), (exp.Sum, exp.Avg, exp.Min, exp.Max)):
                raise UnsupportedOnEngine("PIVOT with count or other aggregates", "duckdb")
        if len(aggs) == 1 and isinstance(aggs[0], exp.Alias):
            aggs[0].replace(aggs[0].this)  # Spark names single-aggregate columns by value only
        elif len(aggs) > 1 and not all(isinstance(a, exp.Alias) for a in aggs):
            raise UnsupportedOnEngine("PIVOT with several unaliased aggregates", "duckdb")


def _generator_kind(gen: exp.Expression, names: int) -> str:
    if isinstance(gen, exp.Anonymous) and gen.name.lower() == "json_tuple":
        return "json_tuple"
    if isinstance(gen, exp.Posexplode):
        return "posexplode_map" if names == 3 else "posexplode"
    if isinstance(gen, exp.Explode):
        return "explode_map" if names == 2 else "explode"
    raise UnsupportedOnEngine("LATERAL VIEW inline/stack", "duckdb")


def _generator_columns(gen: exp.Expression, kind: str, names: list[str], outer: bool) -> str:
    """DuckDB SELECT-list items producing the rows of a Spark generator over __a."""
    if kind == "json_tuple":
        fields = gen.expressions[1:]
        if not all(isinstance(f, exp.Literal) and f.is_string for f in fields):
            raise UnsupportedOnEngine("json_tuple with non-literal field names", "duckdb")
        names = names or [f"c{i}" for i in range(len(fields))]
        paths = [_sql_str("$" + _json_key(f.name)) for f in fields]
        return ", ".join(f"spark_get_json(__a, {p}) AS {_q(n)}" for p, n in zip(paths, names))
    is_map = kind.endswith("_map")
    size = "cardinality(__a)" if is_map else "array_length(__a)"
    lists = ["CAST(range(%s) AS INTEGER[])" % size] if kind.startswith("pos") else []
    lists += ["map_keys(__a)", "map_values(__a)"] if is_map else ["__a"]
    default = (["pos"] if kind.startswith("pos") else []) + (
        ["key", "value"] if is_map else ["col"]
    )
    names = names or default
    if len(names) != len(lists):
        raise SqlError(f"{gen.sql_name().lower()} yields {len(lists)} columns, "
                       f"but {len(names)} names were given", _HINT)  # fmt: skip
    if outer:  # keep a row of NULLs for a NULL or empty collection
        lists = [f"CASE WHEN {size} > 0 THEN {item} ELSE [NULL] END" for item in lists]
    return ", ".join(f"UNNEST({item}) AS {_q(n)}" for item, n in zip(lists, names))


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_outer(gen: exp.Expression) -> bool:
    return type(gen).__name__.lower().endswith("explodeouter")


def _in_lambda(node: exp.Expression) -> bool:
    return node.find_ancestor(exp.Lambda) is not None


def _rewrite_lateral_views(select: exp.Select) -> list[exp.Expression]:
    handled = []
    for i, lateral in enumerate(select.args.get("laterals") or []):
        if not lateral.args.get("view"):
            continue
        gen, alias = lateral.this, lateral.args.get("alias")
        names = [c.name for c in alias.columns] if alias else []
        outer = bool(lateral.args.get("outer")) or _is_outer(gen)
        kind = _generator_kind(gen, len(names))
        handled.append(gen)
        cols = _generator_columns(gen, kind, names, outer=False)
        table = _q(alias.name if alias and alias.name else f"_lateral_view_{i}")
        join = "LEFT JOIN" if outer and kind != "json_tuple" else "CROSS JOIN"
        on = " ON TRUE" if join == "LEFT JOIN" else ""
        query = f"SELECT * FROM __t {join} LATERAL (SELECT {cols}) AS {table}{on}"
        select.append("joins", _duck(query, a=gen.expressions[0] if kind == "json_tuple"
                                     else gen.this).args["joins"][0])  # fmt: skip
    select.set("laterals", None)
    return handled


def _rewrite_select_generators(select: exp.Select) -> list[exp.Expression]:
    gens = [p for p in select.expressions if isinstance(p.unalias(), _GENERATORS)
            or (isinstance(p, exp.Aliases) and isinstance(p.this, _GENERATORS))
            or _is_json_tuple(p.unalias())]  # fmt: skip
    if not gens:
        return []
    if len(gens) > 1:
        raise SqlError("only one generator (explode, posexplode, ...) is allowed per SELECT", _HINT)
    item = gens[0]
    gen = item.this if isinstance(item, (exp.Alias, exp.Aliases)) else item
    if isinstance(item, exp.Aliases):
        names = [e.name for e in item.expressions]
    else:
        names = [item.alias] if isinstance(item, exp.Alias) else []
    kind = _generator_kind(gen, len(names))
    outer = _is_outer(gen)
    cols = _generator_columns(gen, kind, names, outer)
    arg = gen.expressions[0] if kind == "json_tuple" else gen.this
    projections = _duck(f"SELECT {cols}", a=arg).expressions
    index = select.expressions.index(item)
    select.set("expressions", select.expressions[:index] + projections
               + select.expressions[index + 1 :])  # fmt: skip
    return [gen]


_GENERATORS = (exp.Explode, exp.Posexplode, exp.Inline, exp.Stack)


def _is_json_tuple(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == "json_tuple"


# -- DuckDB macros ----------------------------------------------------------------------------

_UNRES = r"A-Za-z0-9\-_.!~*'()"
_OTHER = r"[^\x00-\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"


def _chars(extra: str) -> str:
    """RE2 for a run of java.net.URI characters: unreserved, %XX escapes, non-ASCII, extra."""
    return f"(?:[{_UNRES}{extra}]|%[0-9A-Fa-f]{{2}}|{_OTHER})*"


_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_HOST = (
    rf"(?:\[[0-9A-Fa-f:.]+\]|(?:{_OCTET}\.){{3}}{_OCTET}|{_LABEL}\.?"
    rf"|(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)"
)
_URL = {  # as SQL string literals
    "PATH": _sql_str(_chars(";/:@&=+$,")),
    "URIC": _sql_str(_chars(r";/?:@&=+$,\[\]")),
    "REGNAME": _sql_str(_chars("$,;:@&=+")),
    "SERVERCHARS": _sql_str(_chars(r";:&=+$,@\[\]")),
    "SERVER": _sql_str(rf"(?:{_chars(';:&=+$,')}@)?{_HOST}(?::[0-9]*)?"),
}


def _int_cast_macro(suffix: str, sqltype: str, bits: int, strict: bool) -> str:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    slo, shi = (lo, hi) if bits == 64 else (-(1 << 31), (1 << 31) - 1)
    ansi = "true" if strict else "false"
    d = "TRY_CAST(x AS DOUBLE)"
    if strict:  # try_cast: NULL instead of an error for NaN and out-of-range values
        dbl = f"CASE WHEN trunc({d}) BETWEEN {lo} AND {hi} THEN CAST(trunc({d}) AS HUGEINT) END"
    else:  # Scala's Double.toInt/toLong saturate (NaN is 0), narrower types then wrap
        dbl = (f"CASE WHEN isnan({d}) THEN 0::HUGEINT WHEN {d} >= {shi} THEN {shi}::HUGEINT "
               f"WHEN {d} <= {slo} THEN ({slo})::HUGEINT ELSE CAST(trunc({d}) AS HUGEINT) END")  # fmt: skip
    fit = f"{lo}, {hi}, {ansi}"
    return f"""CREATE OR REPLACE MACRO spark_{"try_" if strict else ""}cast_{suffix}(x) AS CASE
      WHEN typeof(x) = 'VARCHAR' THEN CAST(spark_fit(spark_parse_integral(x, {ansi}), {lo}, {hi}, true) AS {sqltype})
      WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN CAST(spark_fit({dbl}, {fit}) AS {sqltype})
      WHEN typeof(x) LIKE 'DECIMAL%' THEN CAST(spark_fit(TRY_CAST(split_part(CAST(x AS VARCHAR), '.', 1) AS HUGEINT), {fit}) AS {sqltype})
      WHEN typeof(x) = 'BOOLEAN' THEN CAST(TRY_CAST(x AS BOOLEAN) AS {sqltype})
      WHEN typeof(x) LIKE 'TIMESTAMP%' THEN CAST(spark_fit(CAST(floor(epoch_us(TRY_CAST(x AS TIMESTAMP)) / 1000000) AS HUGEINT), {fit}) AS {sqltype})
      WHEN typeof(x) = 'DATE' THEN NULL
      ELSE CAST(spark_fit(TRY_CAST(x AS HUGEINT), {fit}) AS {sqltype}) END"""  # noqa: E501


_NUMERIC_TYPES = "('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'FLOAT', 'DOUBLE')"

_MACROS = [
    r"""CREATE OR REPLACE MACRO spark_trim(s) AS
      regexp_replace(CAST(s AS VARCHAR), '^[\x00-\x20\x7F]+|[\x00-\x20\x7F]+$', '', 'g')""",
    # v (HUGEINT) into [lo, hi]: kept, NULL (ANSI) or wrapped around like a JVM narrowing cast
    """CREATE OR REPLACE MACRO spark_fit(v, lo, hi, ansi) AS CASE WHEN v BETWEEN lo AND hi THEN v
      WHEN ansi THEN NULL ELSE ((v - lo) % (CAST(hi AS HUGEINT) - lo + 1)
      + (CAST(hi AS HUGEINT) - lo + 1)) % (CAST(hi AS HUGEINT) - lo + 1) + lo END""",
    # UTF8String.toLong: optional sign, digits, and (non-ANSI) a fraction that is dropped
    r"""CREATE OR REPLACE MACRO spark_parse_integral(s, ansi) AS CASE
      WHEN CASE WHEN ansi THEN regexp_full_match(spark_trim(s), '[+-]?[0-9]+')
                ELSE regexp_full_match(spark_trim(s), '[+-]?[0-9]*(\.[0-9]*)?') END
       AND NOT regexp_full_match(spark_trim(s), '[+-]?')
      THEN TRY_CAST(regexp_extract(spark_trim(s), '^([+-]?)', 1) || '0'
                    || regexp_extract(spark_trim(s), '^[+-]?([0-9]*)', 1) AS HUGEINT) END""",
    *[_int_cast_macro(*spec, strict) for spec in _INTS.values() for strict in (False, True)],
    # Java's Double.toString from DuckDB's shortest digits: plain in [1e-3, 1e7), else d.dddE[-]n
    r"""CREATE OR REPLACE MACRO spark_num_str(s) AS CASE WHEN s IN ('nan', '-nan') THEN 'NaN'
      WHEN s = 'inf' THEN 'Infinity' WHEN s = '-inf' THEN '-Infinity'
      ELSE list_transform([regexp_extract(s, '^(-?)([0-9]*)\.?([0-9]*)(?:e([+-]?[0-9]+))?$',
        ['sign', 'int', 'frac', 'exp'])], lambda r: list_transform([struct_pack(sign := r['sign'],
          d := rtrim(ltrim(r['int'] || r['frac'], '0'), '0'),
          e := CAST(length(r['int']) + coalesce(TRY_CAST(r['exp'] AS INTEGER), 0) - 1
            - length(r['int'] || r['frac']) + length(ltrim(r['int'] || r['frac'], '0')) AS INTEGER))],
        lambda n: n['sign'] || CASE WHEN n['d'] = '' THEN '0.0'
          WHEN n['e'] BETWEEN 0 AND 6 THEN rpad(left(n['d'], n['e'] + 1), n['e'] + 1, '0') || '.'
            || coalesce(nullif(substring(n['d'], n['e'] + 2), ''), '0')
          WHEN n['e'] BETWEEN -3 AND -1 THEN '0.' || repeat('0', -n['e'] - 1) || n['d']
          ELSE left(n['d'], 1) || '.' || coalesce(nullif(substring(n['d'], 2), ''), '0')
            || 'E' || n['e'] END)[1])[1] END""",
    """CREATE OR REPLACE MACRO spark_cast_string(x) AS CASE
      WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN spark_num_str(CAST(x AS VARCHAR))
      WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE' THEN CAST(TRY_CAST(x AS TIMESTAMP) AS VARCHAR)
      WHEN typeof(x) LIKE 'STRUCT%' OR typeof(x) LIKE 'MAP%' OR typeof(x) LIKE '%[]'
      THEN error('CAST of an array, map or struct to STRING is not supported on the duckdb engine')
      ELSE TRY_CAST(x AS VARCHAR) END""",
    """CREATE OR REPLACE MACRO spark_cast_double(x) AS CASE
      WHEN typeof(x) LIKE 'TIMESTAMP%' THEN epoch_us(TRY_CAST(x AS TIMESTAMP)) / 1000000
      WHEN typeof(x) = 'DATE' THEN NULL ELSE TRY_CAST(x AS DOUBLE) END""",
    f"""CREATE OR REPLACE MACRO spark_cast_timestamp(x) AS CASE
      WHEN typeof(x) IN {_NUMERIC_TYPES} OR typeof(x) LIKE 'DECIMAL%'
      THEN to_timestamp(TRY_CAST(x AS DOUBLE)) ELSE TRY_CAST(x AS TIMESTAMPTZ) END""",
    """CREATE OR REPLACE MACRO spark_cast_boolean(x) AS CASE WHEN typeof(x) = 'VARCHAR' THEN CASE
      WHEN lower(spark_trim(x)) IN ('t', 'true', 'y', 'yes', '1') THEN true
      WHEN lower(spark_trim(x)) IN ('f', 'false', 'n', 'no', '0') THEN false END
      ELSE TRY_CAST(x AS BOOLEAN) END""",
    """CREATE OR REPLACE MACRO spark_div(a BIGINT, b BIGINT) AS a // b, (a, b) AS CASE
      WHEN typeof(a) IN ('DOUBLE', 'FLOAT') OR typeof(b) IN ('DOUBLE', 'FLOAT')
      THEN spark_cast_bigint(a) // spark_cast_bigint(b)
      ELSE CAST(trunc(a / NULLIF(b, 0)) AS BIGINT) END""",
    """CREATE OR REPLACE MACRO spark_size(x) AS CAST(CASE WHEN x IS NULL THEN -1
      WHEN typeof(x) LIKE 'MAP(%' THEN len(json_keys(to_json(x)))
      ELSE len(TRY_CAST(x AS VARCHAR[])) END AS INTEGER)""",
    """CREATE OR REPLACE MACRO spark_array_contains(a, v) AS CASE
      WHEN a IS NULL OR v IS NULL THEN NULL WHEN list_contains(a, v) THEN true
      WHEN list_position(a, NULL) IS NOT NULL THEN NULL ELSE false END""",
    """CREATE OR REPLACE MACRO spark_array_position(a, v) AS CASE
      WHEN a IS NOT NULL AND v IS NOT NULL THEN CAST(coalesce(list_position(a, v), 0) AS BIGINT) END""",
    """CREATE OR REPLACE MACRO spark_array_distinct(a) AS
      list_filter(a, lambda e, i: list_position(a, e) = i)""",
    # UTF8String.substringSQL: position 0 counts as 1, negative from the end, clipped at 0
    """CREATE OR REPLACE MACRO spark_substr_at(s, st, len) AS CASE
      WHEN greatest(st, 0) >= st + CAST(len AS BIGINT) THEN ''
      ELSE substring(s, greatest(st, 0) + 1, st + CAST(len AS BIGINT) - greatest(st, 0)) END""",
    """CREATE OR REPLACE MACRO spark_substr(s, pos) AS spark_substr_at(s, CASE WHEN pos > 0
        THEN pos - 1 WHEN pos < 0 THEN length(s) + pos ELSE 0 END, 2147483647),
      (s, pos, len) AS spark_substr_at(s, CASE WHEN pos > 0 THEN pos - 1
        WHEN pos < 0 THEN length(s) + pos ELSE 0 END, len)""",
    "CREATE OR REPLACE MACRO spark_cws_list(x VARCHAR[]) AS x, (x) AS [CAST(x AS VARCHAR)]",
    """CREATE OR REPLACE MACRO spark_get_json(j, p) AS
      CASE WHEN json_valid(j) THEN json_extract_string(j, p) END""",
    r"""CREATE OR REPLACE MACRO spark_to_date(x VARCHAR) AS list_transform([regexp_extract(
        spark_trim(x), '(?s)^([0-9]{4})(?:-([0-9]{1,2})(?:-([0-9]{1,2})(?:[ T].*)?)?)?$',
        ['y', 'm', 'd'])], lambda r: CASE WHEN r['y'] <> '' THEN TRY_CAST(r['y'] || '-'
        || coalesce(nullif(r['m'], ''), '1') || '-' || coalesce(nullif(r['d'], ''), '1') AS DATE)
        END)[1],
      (x) AS TRY_CAST(x AS DATE),
      (x VARCHAR, f) AS CAST(TRY_STRPTIME(x, f) AS DATE), (x, f) AS TRY_CAST(x AS DATE)""",
    """CREATE OR REPLACE MACRO spark_to_timestamp(x) AS spark_cast_timestamp(x),
      (x VARCHAR, f) AS CAST(TRY_STRPTIME(x, f) AS TIMESTAMPTZ), (x, f) AS TRY_CAST(x AS TIMESTAMPTZ)""",
    """CREATE OR REPLACE MACRO spark_date_add(d, n) AS spark_to_date(d) + CAST(n AS INTEGER)""",
    """CREATE OR REPLACE MACRO spark_unix_timestamp(x VARCHAR, f) AS
      CAST(floor(epoch(TRY_STRPTIME(x, f))) AS BIGINT), (x, f) AS CAST(floor(epoch(x)) AS BIGINT)""",
    """CREATE OR REPLACE MACRO spark_from_unixtime(n, f) AS
      strftime(to_timestamp(spark_cast_bigint(n)), f)""",
    """CREATE OR REPLACE MACRO spark_date_format(x VARCHAR, f) AS
      strftime(TRY_CAST(x AS TIMESTAMPTZ), f), (x, f) AS strftime(x, f)""",
    # java.net.URI, as Spark's parse_url uses it: split, then validate each component
    r"""CREATE OR REPLACE MACRO spark_url_split(u) AS regexp_extract(u,
      '(?s)^(([^:/?#]*):)?((//([^/?#]*))?([^?#]*))(\?([^#]*))?(#(.*))?$',
      ['sc', 'scheme', 'hier', 'au', 'auth', 'path', 'q', 'query', 'f', 'frag'])""",
    rf"""CREATE OR REPLACE MACRO spark_url_flags(u) AS list_transform([spark_url_split(u)],
      lambda g: struct_pack(g := g, opaque := g['sc'] <> '' AND NOT starts_with(g['hier'], '/'),
      server := g['auth'] <> '' AND regexp_full_match(g['auth'], {_URL["SERVERCHARS"]})
                AND regexp_full_match(g['auth'], {_URL["SERVER"]}),
      ok := (g['sc'] = '' OR regexp_full_match(g['scheme'], '[A-Za-z][A-Za-z0-9+.\-]*'))
        AND (g['f'] = '' OR regexp_full_match(g['frag'], {_URL["URIC"]}))
        AND CASE WHEN g['sc'] <> '' AND NOT starts_with(g['hier'], '/')
          THEN g['hier'] || g['q'] <> '' AND regexp_full_match(g['hier'] || g['q'], {_URL["URIC"]})
          ELSE regexp_full_match(g['path'], {_URL["PATH"]})
            AND (g['q'] = '' OR regexp_full_match(g['query'], {_URL["URIC"]}))
            AND NOT (g['au'] <> '' AND g['auth'] = '' AND g['path'] = '' AND g['q'] = '')
            AND (g['auth'] = '' OR regexp_full_match(g['auth'], {_URL["REGNAME"]})
              OR (regexp_full_match(g['auth'], {_URL["SERVERCHARS"]})
                  AND regexp_full_match(g['auth'], {_URL["SERVER"]}))) END))[1]""",
    r"""CREATE OR REPLACE MACRO spark_url_part(u, part) AS list_transform(
      [spark_url_flags(u)], lambda f: CASE WHEN f['ok'] THEN CASE part
        WHEN 'PROTOCOL' THEN CASE WHEN f['g']['sc'] <> '' THEN f['g']['scheme'] END
        WHEN 'HOST' THEN CASE WHEN f['server']
          THEN regexp_extract(f['g']['auth'], '^(?:[^@]*@)?(\[[^\]]*\]|[^:]*)', 1) END
        WHEN 'USERINFO' THEN CASE WHEN f['server'] AND contains(f['g']['auth'], '@')
          THEN regexp_extract(f['g']['auth'], '^([^@]*)@', 1) END
        WHEN 'AUTHORITY' THEN CASE WHEN NOT f['opaque'] AND f['g']['auth'] <> '' THEN f['g']['auth'] END
        WHEN 'PATH' THEN CASE WHEN NOT f['opaque'] THEN f['g']['path'] END
        WHEN 'QUERY' THEN CASE WHEN NOT f['opaque'] AND f['g']['q'] <> '' THEN f['g']['query'] END
        WHEN 'REF' THEN CASE WHEN f['g']['f'] <> '' THEN f['g']['frag'] END
        WHEN 'FILE' THEN CASE WHEN NOT f['opaque']
          THEN f['g']['path'] || CASE WHEN f['g']['q'] <> '' THEN '?' || f['g']['query'] ELSE '' END END
      END END)[1]""",
    r"""CREATE OR REPLACE MACRO parse_url(u, part) AS spark_url_part(u, part),
      (u, part, k) AS CASE WHEN part = 'QUERY' THEN list_transform([spark_url_part(u, 'QUERY')],
        lambda q: CASE WHEN regexp_matches(q, '(&|^)' || k || '=([^&]*)')
          THEN regexp_extract(q, '(&|^)' || k || '=([^&]*)', 2) END)[1] END""",
]


def install_macros(con: Any) -> None:
    """Create (or replace) the DuckDB macros that transpiled SQL relies on."""
    for statement in _MACROS:
        con.execute(statement)
