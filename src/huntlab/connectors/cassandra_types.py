"""CQL <-> Arrow type mapping and value conversion for the Cassandra connector."""

from __future__ import annotations

import decimal
import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from huntlab.errors import ConnectorError, InputError

Convert = Callable[[Any], Any]

# CQL scalar types and their Arrow form. uuid/timeuuid/inet read as canonical strings, so that
# they join with the same values from files; varint reads as decimal(38, 0).
SCALARS: dict[str, pa.DataType] = {
    "ascii": pa.string(),
    "text": pa.string(),
    "varchar": pa.string(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "counter": pa.int64(),
    "varint": pa.decimal128(38, 0),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
    "date": pa.date32(),
    "time": pa.time64("ns"),
    "uuid": pa.string(),
    "timeuuid": pa.string(),
    "inet": pa.string(),
    "blob": pa.binary(),
    "duration": pa.month_day_nano_interval(),
}
COLLECTIONS = ("list", "set", "map")
SUPPORTED = ", ".join([*SCALARS, "decimal", "list", "set", "map"])
DEFAULT_DECIMAL_SCALE = 9


@dataclass(frozen=True)
class CqlType:
    """A parsed CQL type: a name and its parameters (collections), frozen or not."""

    name: str
    params: tuple[CqlType, ...] = ()
    frozen: bool = False

    def __str__(self) -> str:
        inner = f"{self.name}<{', '.join(map(str, self.params))}>" if self.params else self.name
        return f"frozen<{inner}>" if self.frozen else inner


def parse_cql_type(text: str) -> CqlType:
    """Parse a CQL type as the driver's metadata spells it, e.g. 'map<text, frozen<list<int>>>'."""
    parsed, rest = _parse(text.strip())
    if rest.strip():
        raise ConnectorError(f"cannot parse CQL type {text!r}", "Report this type to huntlab")
    return parsed


def _parse(text: str) -> tuple[CqlType, str]:
    i = 0
    while i < len(text) and text[i] not in "<>,":
        i += 1
    name, rest = text[:i].strip(), text[i:]
    if not rest.startswith("<"):
        return CqlType(name.lower() if not name.startswith('"') else name), rest
    params: list[CqlType] = []
    rest = rest[1:]
    while True:
        param, rest = _parse(rest)
        params.append(param)
        rest = rest.lstrip()
        if rest.startswith(","):
            rest = rest[1:]
            continue
        if not rest.startswith(">"):
            raise ConnectorError(f"cannot parse CQL type near {rest[:30]!r}")
        rest = rest[1:]
        break
    if name.lower() == "frozen" and len(params) == 1:
        p = params[0]
        return CqlType(p.name, p.params, frozen=True), rest
    return CqlType(name.lower(), tuple(params)), rest


def arrow_type(t: CqlType, column: str, scale: int = DEFAULT_DECIMAL_SCALE) -> pa.DataType:
    """The Arrow type of a CQL type; a ConnectorError names the column it cannot map."""
    if t.name in SCALARS and not t.params:
        return SCALARS[t.name]
    if t.name == "decimal":
        return pa.decimal128(38, scale)
    if t.name in ("list", "set") and len(t.params) == 1:
        return pa.list_(arrow_type(t.params[0], column, scale))
    if t.name == "map" and len(t.params) == 2:
        key, item = (arrow_type(p, column, scale) for p in t.params)
        return pa.map_(key, item)
    raise ConnectorError(
        f"column {column!r} has CQL type {t} which huntlab cannot map to Arrow "
        "(user-defined types, tuples, vectors and custom types are not supported)",
        f"Read the other columns by naming them; supported types: {SUPPORTED}",
    )


# -- reading: driver values -> values pyarrow accepts ---------------------------------------------
def reader(t: CqlType) -> Convert | None:
    """A per-value converter from what the driver returns to what pa.array accepts (None: as is)."""
    name = t.name
    if name in ("uuid", "timeuuid"):
        return str
    if name == "date":
        return _read_date
    if name == "time":
        return lambda v: v.nanosecond_time
    if name == "duration":
        return lambda v: (v.months, v.days, v.nanoseconds)
    if name == "varint":
        return decimal.Decimal
    if name in ("list", "set"):
        inner = reader(t.params[0])
        return list if inner is None else (lambda v: [None if x is None else inner(x) for x in v])
    if name == "map":
        kr, vr = reader(t.params[0]), reader(t.params[1])
        if kr is None and vr is None:
            return lambda v: list(v.items())
        k_, v_ = kr or _same, vr or _same
        return lambda v: [(k_(a), None if b is None else v_(b)) for a, b in v.items()]
    return None


def _same(v: Any) -> Any:
    return v


def _read_date(v: Any) -> Any:
    try:
        return v.date()
    except (ValueError, OverflowError) as exc:
        raise ConnectorError(
            f"date {v} is outside the range Arrow/Python dates can hold ({exc})",
            "Filter such rows out in Cassandra or store them as text",
        ) from None


def to_arrow_array(values: list[Any], t: CqlType, typ: pa.DataType, column: str) -> pa.Array:
    """Build one Arrow column from the driver's values of a CQL column."""
    conv = reader(t)
    if conv is not None:
        values = [None if v is None else conv(v) for v in values]
    try:
        return pa.array(values, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ConnectorError(
            f"column {column!r} ({t}) does not fit Arrow type {typ}: {exc}",
            "For decimals set the dataset option decimal_scale; or leave the column out",
        ) from exc


# -- writing: Arrow values -> values the driver binds ---------------------------------------------
def writer(t: CqlType, column: str) -> Convert | None:
    """A per-value converter from Arrow's Python values to what the driver serialises."""
    name = t.name
    if name in ("uuid", "timeuuid"):
        return lambda v: _uuid(v, column, name)
    if name == "inet":
        return lambda v: _inet(v, column)
    if name == "varint":
        return int
    if name == "duration":
        from cassandra.util import Duration

        return lambda v: Duration(v.months, v.days, v.nanoseconds)
    if name in ("list", "set"):
        inner = writer(t.params[0], column)
        return None if inner is None else (lambda v: [inner(x) for x in v])
    if name == "map":
        kw, vw = writer(t.params[0], column) or _same, writer(t.params[1], column) or _same
        return lambda v: {kw(a): vw(b) for a, b in v}
    return None


def _uuid(v: Any, column: str, kind: str) -> uuid.UUID:
    if isinstance(v, bytes) and len(v) == 16:
        u = uuid.UUID(bytes=v)
    else:
        try:
            u = uuid.UUID(str(v))
        except ValueError:
            raise InputError(f"column {column!r}: {v!r} is not a UUID") from None
    if kind == "timeuuid" and u.version != 1:
        raise InputError(f"column {column!r}: {u} is not a time-based (version 1) UUID")
    return u


def _inet(v: Any, column: str) -> str:
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise InputError(f"column {column!r}: {v!r} is not an IPv4 or IPv6 address") from None


def python_values(col: pa.ChunkedArray | pa.Array, t: CqlType, typ: pa.DataType, name: str) -> list:
    """Cast one Arrow column to the table's type (safely) and convert it for binding."""
    if t.name == "time":  # the driver binds nanoseconds since midnight
        col = _cast(col, pa.time64("ns"), t, name).cast(pa.int64())
    elif t.name == "decimal" and pa.types.is_decimal(col.type):
        pass  # each value keeps its own scale, as Cassandra's decimal does
    elif t.name == "timestamp" and pa.types.is_timestamp(col.type):
        # Cassandra stores milliseconds: finer units are truncated as the server would.
        col = col.cast(typ, safe=False)
    else:
        col = _cast(col, typ, t, name)
    values = col.to_pylist()
    conv = writer(t, name)
    if conv is not None:
        values = [None if v is None else conv(v) for v in values]
    return values


def _cast(col: Any, typ: pa.DataType, t: CqlType, name: str) -> Any:
    try:
        return col.cast(typ, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InputError(
            f"column {name!r} is {t} in Cassandra but the data has {col.type}: {exc}",
            "Cast the column in the job to a matching type",
        ) from None


# -- creating tables: Arrow -> CQL ----------------------------------------------------------------
_ARROW_TO_CQL: list[tuple[Callable[[pa.DataType], bool], str]] = [
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
    (pa.types.is_int8, "tinyint"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "int"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_uint8, "smallint"),
    (pa.types.is_uint16, "int"),
    (pa.types.is_uint32, "bigint"),
    (pa.types.is_uint64, "varint"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
    (pa.types.is_time, "time"),
    (pa.types.is_binary, "blob"),
    (pa.types.is_large_binary, "blob"),
    (pa.types.is_decimal, "decimal"),
    (lambda t: t == pa.month_day_nano_interval(), "duration"),
]


def cql_type_for(typ: pa.DataType, column: str, nested: bool = False) -> str:
    """The CQL type for an Arrow type when huntlab creates a table; nested collections frozen."""
    for test, cql in _ARROW_TO_CQL:
        if test(typ):
            return cql
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        text = f"list<{cql_type_for(typ.value_type, column, True)}>"
        return f"frozen<{text}>" if nested else text
    if pa.types.is_map(typ):
        k = cql_type_for(typ.key_type, column, True)
        text = f"map<{k}, {cql_type_for(typ.item_type, column, True)}>"
        return f"frozen<{text}>" if nested else text
    raise InputError(
        f"column {column!r} has Arrow type {typ} which has no Cassandra equivalent here",
        "Cast it in the job (e.g. to string), or create the table yourself",
    )
