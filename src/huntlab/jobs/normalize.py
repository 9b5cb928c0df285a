"""Output types whatever the engine ran: integers BIGINT, timestamps UTC, decimals DOUBLE."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us", tz="UTC")


def normalize_type(t: pa.DataType) -> pa.DataType:
    """The canonical huntlab type for an engine's output type."""
    if pa.types.is_decimal(t):
        # Spark types decimal arithmetic as DECIMAL(p, s) where DuckDB often gives DOUBLE.
        return pa.int64() if t.scale == 0 else pa.float64()
    if pa.types.is_timestamp(t):
        return TIMESTAMP
    if pa.types.is_integer(t):
        # Spark has no unsigned types, and the engines differ in widths (row_number() is INT on
        # Spark, BIGINT on DuckDB): every integer result is BIGINT.
        return pa.int64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(normalize_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(normalize_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(normalize_type(t.key_type), normalize_type(t.item_type))
    return t


def normalize_table(table: pa.Table) -> pa.Table:
    """Cast every column to its canonical type; an integer too large for BIGINT stays DECIMAL."""
    columns, fields = [], []
    for f, col in zip(table.schema, table.columns, strict=True):
        target = normalize_type(f.type)
        if target != f.type:
            try:
                columns.append(_cast(col, target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                target = f.type
                columns.append(col)
        else:
            columns.append(col)
        fields.append(pa.field(f.name, target, nullable=True))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _cast(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type) and col.type.tz is None:
        # Naive timestamps from the engines are UTC wall-clock (sessions run in UTC).
        col = pc.assume_timezone(col.cast(pa.timestamp("us")), "UTC")
    return col.cast(target, safe=True)
