"""The upstream collector: authenticate, decode, anonymize, validate, write durably, acknowledge."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc

from huntlab.errors import ConfigError, InputError
from huntlab.upstream.metrics import Metrics

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

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


@dataclass
class Ack:
    """What the client is told once its batch is durable."""

    batch_id: str
    accepted: int = 0
    rejected: int = 0
    duplicate: bool = False
    reasons: Counter[str] = field(default_factory=Counter)

    def body(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "reasons": [
                {"reason": r, "count": n} for r, n in self.reasons.most_common(MAX_REASONS)
            ],
        }


def client_keys(env_names: dict[str, str]) -> dict[bytes, str]:
    """Client key -> product, read from the environment (keys never live in huntlab.toml)."""
    keys = {}
    for product, var in env_names.items():
        value = os.environ.get(var)
        if value:
            keys[value.encode()] = product
    if not keys:
        raise ConfigError(
            "no client keys: none of the variables in [upstream.client_keys_env] is set",
            "Set one, e.g. export HUNTLAB_KEY_FREE_AV=$(python -c 'import secrets;"
            "print(secrets.token_hex(16))')",
        )
    return keys


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


class Collector:
    """The collector's logic, independent of HTTP (the ASGI app is a thin shell around it)."""

    def __init__(self, ws: Workspace, keys: dict[bytes, str] | None = None) -> None:
        from huntlab.upstream.anonymize import Anonymizer, GeoTable, Pseudonymizer, load_key
        from huntlab.upstream.log import SegmentLog

        cfg = ws.config.upstream
        self.ws, self.cfg = ws, cfg
        self.keys = keys if keys is not None else client_keys(cfg.client_keys_env)
        an = cfg.anonymize
        key = load_key(an.key_file, an.key_env)
        geo = GeoTable.from_csv(an.geo_table) if an.geo_table else GeoTable.empty()
        self.anonymizer = Anonymizer(
            Pseudonymizer(key, an.rotation, link_across_periods=an.link_across_periods), geo
        )
        self.log = SegmentLog(
            ws.root / cfg.log_dir, segment_bytes=cfg.segment_mb << 20, writable=True
        )
        self.metrics = Metrics()
        self.event_type = event_struct(cfg.max_field_chars)

    def close(self) -> None:
        self.log.close()

    def product_for(self, key: str | None) -> str:
        """The product whose client key this is; constant-time comparison."""
        if key:
            given = key.encode()
            for known, product in self.keys.items():
                if hmac.compare_digest(given, known):
                    return product
        raise BadRequest(
            "missing or unknown client key",
            "Send the product's key as 'Authorization: Bearer KEY'",
            status=401,
        )

    def ingest(
        self,
        body: bytes,
        *,
        product: str,
        peer_ip: str | None,
        batch_id: str | None,
        gzipped: bool = False,
    ) -> Ack:
        """Everything after authentication; returns once accepted events are fsynced."""
        started = time.perf_counter()
        received = dt.datetime.now(dt.UTC)
        try:
            raw = decode_body(body, gzipped, self.cfg.max_body_bytes * 8)
            batch_id = batch_id or hashlib.sha256(raw).hexdigest()[:32]
            records, bad_lines = split_records(raw, self.event_type)
            if len(records) + len(bad_lines) > self.cfg.max_events:
                raise BadRequest(
                    f"the batch has over {self.cfg.max_events:,} events",
                    "Split it into smaller batches",
                    status=413,
                )
        except BadRequest as exc:
            self.metrics.add("bad_requests")
            self._quarantine_request(
                batch_id or hashlib.sha256(body).hexdigest()[:32],
                product,
                received,
                exc.message,
                len(body),
            )
            raise
        ack = Ack(batch_id)
        table, bad = self._table(records, product, batch_id, peer_ip)
        bad += [(_unparsed(raw_line), reason) for raw_line, reason in bad_lines]
        quarantine = [
            self._bad_record(rec, reason, peer_ip, product, received) for rec, reason in bad
        ]
        frames: list[tuple[str, str, pa.Table]] = []
        if table is not None and table.num_rows:
            from huntlab.events import validate_batch

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
                frames.append((batch_id, "events", valid))
            ack.accepted = valid.num_rows
        if quarantine:
            ack.rejected = len(quarantine)
            ack.reasons.update(q[2] for q in quarantine)
            qt = pa.Table.from_arrays(
                [pa.array(c) for c in zip(*quarantine, strict=True)], schema=QUARANTINE_SCHEMA
            )
            frames.append((f"{batch_id}#q", "quarantine", qt))
        if frames:  # both frames become durable with one fsync
            ack.duplicate = any(r.duplicate for r in self.log.append_many(frames))
        self._count(ack)
        self.metrics.observe(time.perf_counter() - started)
        return ack

    def _count(self, ack: Ack) -> None:
        self.metrics.add("requests")
        if ack.duplicate:
            self.metrics.add("duplicate_batches")
            return
        self.metrics.add("accepted", ack.accepted)
        self.metrics.add("rejected", ack.rejected)
        self.metrics.add("quarantined", ack.rejected)
        self.metrics.add_reasons(ack.reasons)

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

    def _quarantine_request(
        self, batch_id: str, product: str, received: dt.datetime, reason: str, size: int
    ) -> None:
        """A refused request is recorded (never its body: it could not be anonymized)."""
        row = {"request_bytes": size}
        qt = pa.Table.from_pylist(
            [
                {
                    "received_at": received,
                    "product": product,
                    "reason": reason,
                    "record": json.dumps(row),
                }
            ],
            schema=QUARANTINE_SCHEMA,
        )
        self.log.append(f"{batch_id}#r", "quarantine", qt)
        self.metrics.add("quarantined")


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
