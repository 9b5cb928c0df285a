"""Type mapping between PostgreSQL and Arrow, both ways, for the PostgreSQL connector.

Reads arrive from ADBC's binary COPY already typed; a few PostgreSQL types are normalised so both
engines see the same thing (uuid and json/jsonb as strings, numeric(p,s) as decimal). Writes need
PostgreSQL's exact binary type per column, so each Arrow type has one native PostgreSQL type.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from huntlab.errors import ConnectorError

# PostgreSQL types (pg_type.typname) that reach Arrow unchanged through ADBC.
READABLE = {
    "bool", "int2", "int4", "int8", "float4", "float8", "text", "varchar", "bpchar", "name",
    "date", "timestamp", "timestamptz", "bytea", "numeric", "uuid", "json", "jsonb",
}  # fmt: skip
# Read as text (SQL cast in the projection): a string is what both engines understand.
AS_TEXT = {"uuid": "text", "_uuid": "_text", "_json": "_text", "_jsonb": "_text"}
# numeric beyond Arrow's decimal128 precision, or unconstrained, is read as float8.
MAX_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class PgColumn:
    """A column of an existing table, as the catalog describes it."""

    name: str
    typname: str
    schema: str
    category: str  # pg_type.typcategory: N numeric, S string, B bool, D datetime, A array, U ...
    not_null: bool


def readable(typname: str) -> bool:
    """Whether a column of this PostgreSQL type can be read (arrays of readable types too)."""
    return typname in READABLE or (typname.startswith("_") and typname[1:] in READABLE)


def unmappable(column: str, typname: str, where: str) -> ConnectorError:
    return ConnectorError(
        f"{where}: column '{column}' has PostgreSQL type {typname}, which huntlab cannot map "
        "to Arrow",
        'Cast it in a query dataset (--query "SELECT col::text AS col ...") or leave it out',
    )


def numeric_type(typmod: int) -> pa.DataType:
    """numeric(p,s) becomes decimal128(p,s); unconstrained or wider numeric becomes float64."""
    if typmod < 4:
        return pa.float64()
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    if precision > MAX_DECIMAL_PRECISION:
        return pa.float64()
    return pa.decimal128(precision, scale)


def normalize_read(table: pa.Table) -> pa.Table:
    """Strip ADBC's extension types: numeric to decimal/float, json to plain strings."""
    cols, fields = [], []
    for field, raw in zip(table.schema, table.columns):
        meta = field.metadata or {}
        col = raw
        if isinstance(field.type, pa.BaseExtensionType):
            col = _storage(raw)
            if meta.get(b"POSTGRESQL:type") == b"numeric":
                col = col.cast(numeric_type(int(meta.get(b"POSTGRESQL:typmod", b"-1"))))
        if pa.types.is_list(col.type):
            col = col.cast(pa.list_(col.type.value_type))  # drops ADBC's per-item metadata
        cols.append(col)
        fields.append(pa.field(field.name, col.type))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _storage(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([c.storage for c in col.chunks], type=col.type.storage_type)


def prepare_write(table: pa.Table) -> pa.Table:
    """Bring Arrow types to ones ADBC writes natively (dictionaries decoded, large narrowed)."""
    cols = []
    for col in table.columns:
        cols.append(col.cast(_writable(col.type)) if _writable(col.type) != col.type else col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def _writable(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _writable(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):
        return pa.int64() if t.bit_width < 64 else pa.decimal128(20, 0)
    if pa.types.is_int8(t):
        return pa.int16()
    if pa.types.is_timestamp(t) and t.unit == "ns":
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(_writable(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_writable(t.value_type))
    return t


def native_typname(t: pa.DataType) -> str | None:
    """The PostgreSQL type ADBC writes for an Arrow type (binary COPY needs an exact match)."""
    if isinstance(t, pa.BaseExtensionType):
        return {"arrow.uuid": "uuid", "arrow.json": "json"}.get(t.extension_name)
    simple = {
        pa.bool_(): "bool", pa.int16(): "int2", pa.int32(): "int4", pa.int64(): "int8",
        pa.float32(): "float4", pa.float64(): "float8", pa.string(): "text",
        pa.binary(): "bytea", pa.date32(): "date",
    }  # fmt: skip
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_list(t):
        inner = native_typname(t.value_type)
        return f"_{inner}" if inner and not inner.startswith("_") else None
    return None


def ddl_type(name: str, t: pa.DataType) -> str:
    """The column type used when huntlab creates a table (jsonb for JSON, numeric(p,s))."""
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    native = native_typname(t)
    if native is None:
        raise ConnectorError(
            f"column '{name}' has Arrow type {t}, which has no PostgreSQL type in huntlab",
            "Cast it in the job (e.g. to string) before writing to PostgreSQL",
        )
    if native == "json":
        return "jsonb"
    if native.startswith("_"):
        return f"{native[1:]}[]"
    return {"timestamptz": "timestamptz", "timestamp": "timestamp"}.get(native, native)


# Which PostgreSQL type categories an Arrow type may be cast into (the server does the cast).
def compatible(t: pa.DataType, col: PgColumn) -> bool:
    """Whether data of Arrow type t can go into the column (else a clear schema error)."""
    cat = col.category
    if pa.types.is_dictionary(t):
        t = t.value_type
    if isinstance(t, pa.BaseExtensionType):
        return cat in "SU"
    if pa.types.is_boolean(t):
        return cat in "BS"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return cat in "NS"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return cat in "SUDNB"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return cat in "DS"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return col.typname == "bytea"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return cat == "A"
    return native_typname(t) == col.typname
