"""The upstream telemetry event model: one wide Arrow schema for every antivirus client event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)

EVENT_TYPES: tuple[str, ...] = (
    "blocked_infection",
    "beta_detection",
    "detection_hits",
    "crash",
    "blocked_url",
)
DETECTION_TYPES: tuple[str, ...] = ("blocked_infection", "beta_detection", "detection_hits")

TS_TYPE = pa.timestamp("us", tz="UTC")

# All fields are nullable on purpose (files, DuckDB and Delta round-trip them unchanged);
# which columns must be filled for each event type is REQUIRED_FIELDS, enforced by validate_batch.
EVENT_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("schema_version", pa.int32()),
        pa.field("ts", TS_TYPE),
        pa.field("event_date", pa.date32()),
        pa.field("client_id", pa.string()),
        pa.field("product", pa.string()),
        pa.field("product_version", pa.string()),
        pa.field("os", pa.string()),
        pa.field("country", pa.string()),
        pa.field("detection_name", pa.string()),
        pa.field("family", pa.string()),
        pa.field("file_hash", pa.string()),
        pa.field("url", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("hit_count", pa.int64()),
        pa.field("crash_signature", pa.string()),
    ]
)

FIELD_DOCS: dict[str, str] = {
    "event_id": "uuid4 as 32 lowercase hex chars",
    "event_type": "one of EVENT_TYPES",
    "schema_version": "version of this schema the client spoke (1)",
    "ts": "event time, UTC, microseconds",
    "event_date": "UTC date of ts; the partition column",
    "client_id": "client pseudonym, 32 lowercase hex chars (keyed hash), never a raw id",
    "product": "product edition, e.g. free_av, internet_security, total_protection",
    "product_version": "product version, e.g. 24.3.1",
    "os": "operating system, e.g. win10, win11, macos14, android13",
    "country": "ISO 3166-1 alpha-2 country code",
    "detection_name": "detection name, e.g. 'Win32:Emotet-AB [Trj]' or 'URL:Phishing'",
    "family": "malware family, e.g. Emotet (detections only)",
    "file_hash": "sha256 of the detected file, 64 lowercase hex chars",
    "url": "blocked URL (blocked_url only)",
    "domain": "host of url, lowercased, without port, userinfo or leading 'www.'",
    "hit_count": "hits in the report (detection_hits); 1 for other detections; null for crash",
    "crash_signature": "top frame of the crash, e.g. 'avsvc.exe!ScanEngine::Open+0x1f3'",
}

COMMON_REQUIRED: tuple[str, ...] = (
    "event_id",
    "event_type",
    "schema_version",
    "ts",
    "event_date",
    "client_id",
    "product",
    "product_version",
    "os",
    "country",
)

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "blocked_infection": COMMON_REQUIRED + ("detection_name", "family", "file_hash", "hit_count"),
    "beta_detection": COMMON_REQUIRED + ("detection_name", "family", "file_hash", "hit_count"),
    "detection_hits": COMMON_REQUIRED + ("detection_name", "family", "hit_count"),
    "crash": COMMON_REQUIRED + ("crash_signature",),
    "blocked_url": COMMON_REQUIRED + ("url", "domain", "hit_count"),
}

# Reason codes written by validate_batch (several are joined with ';').
REASON_MISSING_EVENT_TYPE = "missing:event_type"
REASON_UNKNOWN_EVENT_TYPE = "unknown_event_type"
REASON_FUTURE_TS = "future_ts"
REASON_SCHEMA_VERSION = "unsupported_schema_version"
REASON_DATE_MISMATCH = "event_date_mismatch"
REASON_HIT_COUNT = "bad_hit_count"

MAX_FUTURE = timedelta(days=1)

_HEX64 = r"^[0-9a-fA-F]{64}$"
_HEX32 = r"^[0-9a-fA-F]{32}$"
_COUNTRY = r"^[A-Z]{2}$"
# scheme? userinfo@? host (bracketed IPv6 or up to ':' '/' '?' '#' '\')
_HOST_RE = r"^(?:[a-z][a-z0-9+.\-]*://)?(?:[^@/?#\\]*@)?(?P<host>\[[^\]]*\]|[^:/?#\\]*)"


def url_domains(urls: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Vectorized host of each URL: lowercased, no scheme, userinfo, port or leading 'www.'."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(urls))
    host = pc.struct_field(pc.extract_regex(lowered, _HOST_RE), [0])
    host = pc.replace_substring_regex(host, r"^\[|\]$", "")
    host = pc.replace_substring_regex(host, r"\.+$", "")
    host = pc.replace_substring_regex(host, r"^www\.", "")
    return pc.if_else(pc.equal(host, ""), pa.scalar(None, pa.string()), host)


def url_domain(url: str | None) -> str | None:
    """Host of one URL, normalized like url_domains."""
    if url is None:
        return None
    return url_domains(pa.array([url], pa.string()))[0].as_py()


def empty_events() -> pa.Table:
    """An empty table with EVENT_SCHEMA."""
    return EVENT_SCHEMA.empty_table()


def _coerce(
    col: pa.ChunkedArray, typ: pa.DataType
) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """Cast a column to typ; if the cast fails, null it and return the mask of rows it broke."""
    if col.type == typ:
        return col, None
    try:
        if pa.types.is_timestamp(typ) and pa.types.is_timestamp(col.type):
            if col.type.tz is None:
                col = pc.assume_timezone(col, "UTC")
            return pc.cast(col, typ, safe=False), None  # ns -> us truncates
        return pc.cast(col, typ), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        bad = pc.is_valid(col)
        return pa.chunked_array([pa.nulls(len(col), typ)]), bad


def _mask(mask: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A boolean mask with nulls read as False."""
    return pc.fill_null(mask, False)


def _blank(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a value is null, or an empty string for string columns."""
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.fill_null(pc.equal(pc.binary_length(col), 0), True)
    return pc.is_null(col)


def conform(
    table: pa.Table | pa.RecordBatch,
) -> tuple[pa.Table, list[tuple[pa.ChunkedArray, str]]]:
    """Conform columns to EVENT_SCHEMA; also return (mask, reason) of the casts that failed."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    n = table.num_rows
    columns: list[pa.ChunkedArray] = []
    reasons: list[tuple[pa.ChunkedArray, str]] = []
    names = set(table.column_names)
    for field in EVENT_SCHEMA:
        if field.name not in names:
            columns.append(pa.chunked_array([pa.nulls(n, field.type)]))
            continue
        col, bad = _coerce(table.column(table.column_names.index(field.name)), field.type)
        columns.append(col)
        if bad is not None:
            reasons.append((bad, f"bad_type:{field.name}"))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA), reasons


def validate_batch(
    table: pa.Table | pa.RecordBatch, *, now: datetime | None = None
) -> tuple[pa.Table, pa.Table]:
    """Split events into (valid rows with EVENT_SCHEMA, rejected rows plus a `reason` column).

    Input columns are matched by name and cast to EVENT_SCHEMA (extra columns are dropped;
    missing ones are null; naive timestamps are taken as UTC). A null event_date is filled from
    ts and a null domain from url; hashes are lowercased. A row is rejected with every reason
    that applies, joined with ';' (a column that cannot be cast at all rejects every row holding a
    value in it as bad_type:<column>): missing:event_type, unknown_event_type, missing:<column>
    (required for its type, null or empty string), future_ts (ts > now + 1 day), malformed:file_hash
    (not 64 hex), malformed:client_id (not 32 hex), malformed:country (not 2 upper-case letters),
    unsupported_schema_version, event_date_mismatch, bad_hit_count (< 1), bad_type:<column>.
    """
    t, checks = conform(table)

    ts = t.column("ts")
    derived_date = pc.cast(ts, pa.date32())
    event_date = t.column("event_date")
    date_mismatch = pc.and_(pc.is_valid(event_date), pc.not_equal(event_date, derived_date))
    t = _set(t, "event_date", pc.coalesce(event_date, derived_date))
    need_domain = _mask(pc.and_(pc.is_null(t.column("domain")), pc.is_valid(t.column("url"))))
    if pc.any(need_domain).as_py():
        derived = _flat(url_domains(t.column("url").filter(need_domain)))
        domain = pc.replace_with_mask(_flat(t.column("domain")), _flat(need_domain), derived)
        t = _set(t, "domain", domain)
    for name in ("file_hash", "client_id"):
        t = _set(t, name, pc.ascii_lower(t.column(name)))

    etype = t.column("event_type")
    checks.append((pc.is_null(etype), REASON_MISSING_EVENT_TYPE))
    known = pc.is_in(etype, value_set=pa.array(EVENT_TYPES, pa.string()))
    checks.append((pc.and_(pc.is_valid(etype), pc.invert(known)), REASON_UNKNOWN_EVENT_TYPE))

    of_types: dict[tuple[str, ...], pa.ChunkedArray] = {}
    for field in EVENT_SCHEMA:
        needing = tuple(et for et in EVENT_TYPES if field.name in REQUIRED_FIELDS[et])
        if not needing or field.name == "event_type":
            continue
        if needing not in of_types:
            of_types[needing] = pc.is_in(etype, value_set=pa.array(needing, pa.string()))
        of_type = of_types[needing]
        checks.append((pc.and_(of_type, _blank(t.column(field.name))), f"missing:{field.name}"))

    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    checks.append((pc.greater(ts, pa.scalar(now + MAX_FUTURE, TS_TYPE)), REASON_FUTURE_TS))

    for name, pattern in (("file_hash", _HEX64), ("client_id", _HEX32), ("country", _COUNTRY)):
        col = t.column(name)
        bad = pc.and_(pc.invert(_blank(col)), pc.invert(pc.match_substring_regex(col, pattern)))
        checks.append((bad, f"malformed:{name}"))

    sv = t.column("schema_version")
    supported = pa.array(SUPPORTED_SCHEMA_VERSIONS, pa.int32())
    checks.append(
        (
            pc.and_(pc.is_valid(sv), pc.invert(pc.is_in(sv, value_set=supported))),
            REASON_SCHEMA_VERSION,
        )
    )
    checks.append((date_mismatch, REASON_DATE_MISMATCH))
    checks.append((pc.less(t.column("hit_count"), 1), REASON_HIT_COUNT))

    masks = [_mask(m) for m, _ in checks]
    bad_rows = masks[0]
    for m in masks[1:]:
        bad_rows = pc.or_(bad_rows, m)
    if not pc.any(bad_rows).as_py():
        return t, t.slice(0, 0).append_column("reason", pa.array([], pa.string()))
    valid = t.filter(pc.invert(bad_rows))
    rejected = t.filter(bad_rows)
    # Reason strings only for the rejected rows. binary_join_element_wise(null_handling="skip")
    # drops all-null rows in pyarrow 26 (wrong output length), so join with "" for nulls and
    # squeeze the separators instead.
    parts = [
        pc.if_else(m.filter(bad_rows), pa.scalar(text, pa.string()), pa.scalar("", pa.string()))
        for m, (_, text) in zip(masks, checks)
    ]
    if rejected.num_rows:
        joined = pc.binary_join_element_wise(*parts, ";", null_handling="replace")
        reason = pc.utf8_trim(pc.replace_substring_regex(joined, ";{2,}", ";"), ";")
    else:
        reason = pa.array([], pa.string())
    return valid, rejected.append_column("reason", reason)


def _flat(x: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array."""
    return x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x


def _set(t: pa.Table, name: str, col: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Replace column `name` of an EVENT_SCHEMA table."""
    i = t.schema.get_field_index(name)
    return t.set_column(i, t.schema.field(i), col)
