"""Turning one request body into log frames: decode, check, anonymize, validate, encode.

Pure work with no shared state but caches, so the collector can run it in worker processes
(`[upstream] workers`) while one writer appends the frames and fsyncs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc

from huntlab.errors import InputError

if TYPE_CHECKING:
    from huntlab.config import UpstreamConfig
    from huntlab.upstream.anonymize import Anonymizer

# What a client may send for one event; anything else in a record is ignored, never stored.
STRING_FIELDS = (
    "event_id",
    "event_type",
    "client_id",
    "product",
    "product_version",
    "os",
    "detection_name",
    "family",
    "file_hash",
    "url",
    "crash_signature",
    "ip",
)
# Field order of the typed event (event_struct) and of rows built from plain records.
_DEFAULTS = (
    *((f, None) for f in STRING_FIELDS),
    ("type", None),
    ("ts", None),
    ("hit_count", None),
    ("schema_version", 1),
)
_EVENT_ID, _PRODUCT = STRING_FIELDS.index("event_id"), STRING_FIELDS.index("product")
_TYPE, _TS = len(STRING_FIELDS), len(STRING_FIELDS) + 1
# Fields a quarantined record keeps (anonymized); other keys are only counted.
KNOWN_FIELDS = (*STRING_FIELDS, "ts", "hit_count", "schema_version", "type")
QUARANTINE_SCHEMA = pa.schema(
    [
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("product", pa.string()),
        ("reason", pa.string()),
        ("record", pa.string()),
    ]
)
MAX_REASONS = 5


class BadRequest(InputError):
    """The request is not a batch at all: answered with a 4xx and this message."""

    def __init__(self, message: str, hint: str, status: int = 400) -> None:
        super().__init__(message, hint)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries intact
        return (BadRequest, (self.message, self.hint or "", self.status))


@dataclass
class Prepared:
    """A batch ready for the log: its frames (encoded) and what the client will be told."""

    batch_id: str
    accepted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    frames: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())


def decode_body(body: bytes, gzipped: bool, max_bytes: int) -> bytes:
    """Gunzip when asked (or when the body starts with the gzip magic), bounded against bombs."""
    if not (gzipped or body[:2] == b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise BadRequest(
                f"the decompressed body is over {max_bytes:,} bytes",
                "Send smaller batches",
                status=413,
            )
        if not inflater.eof:
            raise BadRequest("the gzip body is truncated", "Resend the whole batch")
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid gzip: {exc}", "Resend the batch") from exc
    return out


def event_struct(max_chars: int) -> type:
    """The typed shape of one event (msgspec): decoding checks types and sizes in C.

    A record that does not fit is decoded again untyped, only to say why (`_check_record`)."""
    import msgspec

    text = Annotated[str, msgspec.Meta(max_length=max_chars)] | None
    i64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    i32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
    fields: list[tuple[str, Any, Any]] = [(f, text, None) for f in STRING_FIELDS]
    fields += [
        ("type", text, None),
        ("ts", str | int | float | None, None),
        ("hit_count", i64 | None, None),
        ("schema_version", i32, 1),
    ]
    return msgspec.defstruct("UpstreamEvent", fields, omit_defaults=True)


def split_records(
    body: bytes, event_type: type | None = None
) -> tuple[list[Any], list[tuple[bytes, str]]]:
    """A JSON array or JSON lines -> (records, [(raw line, reason)] for lines that are not JSON).

    With `event_type`, a record that fits it is returned as that struct, any other as plain
    JSON (a dict, or whatever value the line holds) for the caller to explain."""
    import msgspec

    stripped = body.lstrip()
    if not stripped:
        raise BadRequest("the batch is empty", "Send JSON lines or a JSON array of events")
    if stripped[:1] == b"[":
        if event_type is not None:
            try:
                return msgspec.json.decode(stripped, type=list[event_type]), []
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                pass  # decoded again untyped below, to tell which record is wrong and why
        try:
            records = msgspec.json.decode(stripped)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(
                f"the body is not a valid JSON array: {exc}",
                "Send a valid JSON array, or JSON lines so one bad event does not spoil the batch",
            ) from exc
        return records, []
    typed = msgspec.json.Decoder(event_type) if event_type is not None else None
    plain = msgspec.json.Decoder()
    good: list[Any] = []
    bad: list[tuple[bytes, str]] = []
    for line in stripped.split(b"\n"):
        if not line.strip():
            continue
        if typed is not None:
            try:
                good.append(typed.decode(line))
                continue
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                pass
        try:
            good.append(plain.decode(line))
        except (msgspec.DecodeError, UnicodeDecodeError):
            try:
                line.decode("utf-8")
                reason = "malformed_json"
            except UnicodeDecodeError:
                reason = "invalid_utf8"
            bad.append((line, reason))
    if not good and bad and not any(t.lstrip().startswith(b"{") for t, _ in bad):
        raise BadRequest(
            "the body is neither JSON lines nor a JSON array",
            "Send one JSON object per line, or a JSON array of objects",
        )
    return good, bad


def _parse_ts(value: Any) -> dt.datetime | None:
    if isinstance(value, bool):
        raise ValueError("bool")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        ts = dt.datetime.fromisoformat(value)
        return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
    if value is None:
        return None
    raise ValueError(type(value).__name__)


class BatchPreparer:
    """Everything between the request body and the frames, for one collector configuration."""

    def __init__(self, cfg: UpstreamConfig, anonymizer: Anonymizer) -> None:
        self.cfg = cfg
        self.anonymizer = anonymizer
        self.event_type = event_struct(cfg.max_field_chars)

    def prepare(
        self,
        body: bytes,
        *,
        product: str,
        peer_ip: str | None,
        batch_id: str | None,
        gzipped: bool = False,
    ) -> Prepared:
        """Decode, check, anonymize and validate a body; BadRequest when it is not a batch."""
        from huntlab.events import validate_batch
        from huntlab.upstream.log import encode_frame

        received = dt.datetime.now(dt.UTC)
        raw = decode_body(body, gzipped, self.cfg.max_body_bytes * 8)
        batch_id = batch_id or hashlib.sha256(raw).hexdigest()[:32]
        records, bad_lines = split_records(raw, self.event_type)
        if len(records) + len(bad_lines) > self.cfg.max_events:
            raise BadRequest(
                f"the batch has over {self.cfg.max_events:,} events",
                "Split it into smaller batches",
                status=413,
            )
        out = Prepared(batch_id)
        table, bad = self._table(records, product, batch_id, peer_ip)
        bad += [(_unparsed(raw_line), reason) for raw_line, reason in bad_lines]
        quarantine = [
            self._bad_record(rec, reason, peer_ip, product, received) for rec, reason in bad
        ]
        if table is not None and table.num_rows:
            valid, rejected = validate_batch(self.anonymizer.anonymize(table, peer_ip))
            if rejected.num_rows:
                reasons = rejected.column("reason").to_pylist()
                quarantine += [
                    (received, product, r, json.dumps(rec, default=str, sort_keys=True))
                    for rec, r in zip(
                        rejected.drop_columns(["reason"]).to_pylist(), reasons, strict=True
                    )
                ]
            if valid.num_rows:
                out.frames.append((batch_id, encode_frame(batch_id, "events", valid)))
            out.accepted = valid.num_rows
        if quarantine:
            out.reasons.update(q[2] for q in quarantine)
            qt = pa.Table.from_arrays(
                [pa.array(c) for c in zip(*quarantine, strict=True)], schema=QUARANTINE_SCHEMA
            )
            qid = f"{batch_id}#q"
            out.frames.append((qid, encode_frame(qid, "quarantine", qt)))
        return out

    def _table(
        self, records: list[Any], product: str, batch_id: str, peer_ip: str | None
    ) -> tuple[pa.Table | None, list[tuple[Any, str]]]:
        """Decoded records -> one Arrow table of the well-formed ones; the rest with a reason."""
        import msgspec

        rows: list[tuple[Any, ...]] = []
        bad: list[tuple[Any, str]] = []
        limit = self.cfg.max_field_chars
        for i, rec in enumerate(records):
            if isinstance(rec, self.event_type):
                row = msgspec.structs.astuple(rec)
                reason = "product_mismatch" if row[_PRODUCT] not in (None, product) else None
            else:
                reason = _check_record(rec, product, limit)
                row = tuple(rec.get(f, d) for f, d in _DEFAULTS) if reason is None else ()
            if reason is None:
                try:
                    row = (*row[:_TS], _parse_ts(row[_TS]), *row[_TS + 1 :])
                except (ValueError, OverflowError, OSError):
                    reason = "bad_type:ts"
            if reason is not None:
                bad.append(
                    (
                        msgspec.structs.asdict(rec) if isinstance(rec, self.event_type) else rec,
                        reason,
                    )
                )
                continue
            if row[_EVENT_ID] is None:  # resends get the same id, so no duplicates
                row = (hashlib.sha256(f"{batch_id}:{i}".encode()).hexdigest()[:32], *row[1:])
            rows.append(row)
        if not rows:
            return None, bad
        cols = list(zip(*rows))
        arrays = {f: pa.array(cols[j], pa.string()) for j, f in enumerate(STRING_FIELDS)}
        types = pa.array(cols[_TYPE], pa.string())
        arrays["event_type"] = pc.coalesce(arrays["event_type"], types)
        arrays["product"] = pa.array([product] * len(rows), pa.string())
        arrays["ts"] = pa.array(cols[_TS], pa.timestamp("us", tz="UTC"))
        arrays["hit_count"] = pa.array(cols[_TS + 1], pa.int64())
        arrays["schema_version"] = pa.array(cols[_TS + 2], pa.int32())
        return pa.table(arrays), bad

    def _bad_record(
        self, rec: Any, reason: str, peer_ip: str | None, product: str, received: dt.datetime
    ) -> tuple[dt.datetime, str, str, str]:
        if isinstance(rec, dict):
            record = {k: (v[:1024] if isinstance(v, str) else v) for k, v in rec.items()}
        else:  # a JSON value that is not an object: like an unparsed line, never its text
            record = {
                "value_type": type(rec).__name__,
                **_unparsed(json.dumps(rec, default=str).encode()),
            }
        clean = self.anonymizer.anonymize_record(
            record, peer_ip, (*KNOWN_FIELDS, "value_type", "line_bytes", "line_sha256")
        )
        return (received, product, reason, json.dumps(clean, default=str, sort_keys=True))


def _unparsed(line: bytes) -> dict[str, Any]:
    """What quarantine keeps of a line that is not JSON: its size and hash, never its text
    (an unparsed line cannot be anonymized field by field)."""
    return {"line_bytes": len(line), "line_sha256": hashlib.sha256(line).hexdigest()}


def _check_record(rec: Any, product: str, limit: int) -> str | None:
    """Why a decoded record cannot become a row (None when it can)."""
    if not isinstance(rec, dict):
        return "not_an_object"
    for f in STRING_FIELDS:
        v = rec.get(f)
        if v is not None and not isinstance(v, str):
            return f"bad_type:{f}"
        if v is not None and len(v) > limit:
            return f"oversized:{f}"
    sent = rec.get("product")
    if sent is not None and sent != product:
        return "product_mismatch"
    hc = rec.get("hit_count")
    if hc is not None and (isinstance(hc, bool) or not isinstance(hc, int) or abs(hc) >= 2**63):
        return "bad_type:hit_count"
    sv = rec.get("schema_version", 1)
    if isinstance(sv, bool) or not isinstance(sv, int) or abs(sv) >= 2**31:
        return "bad_type:schema_version"
    return None


def refusal_frame(batch_id: str, product: str, reason: str, size: int) -> tuple[str, bytes]:
    """A refused request, for quarantine: when, who, why and its size, never its body."""
    from huntlab.upstream.log import encode_frame

    row = {
        "received_at": dt.datetime.now(dt.UTC),
        "product": product,
        "reason": reason,
        "record": json.dumps({"request_bytes": size}),
    }
    qid = f"{batch_id}#r"
    return qid, encode_frame(
        qid, "quarantine", pa.Table.from_pylist([row], schema=QUARANTINE_SCHEMA)
    )
