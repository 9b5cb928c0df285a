"""Anonymization at the edge (DESIGN decision 9): nothing identifying reaches the log.

- client ids become keyed HMAC-SHA256 pseudonyms; the key is derived per period (day, week or
  month of the event) from a master key kept outside the repository, so pseudonyms of one client
  do not link across periods unless configured;
- IP addresses become a country through an IP-range table (else ZZ) and are dropped;
- URLs lose user-info, e-mail addresses, identifying query parameters, session path parameters,
  JWTs and long opaque path tokens;
- free text (crash signatures, paths) loses e-mail addresses, user names in home folders and IP
  addresses.
Masks run once per distinct value of a column (Arrow dictionary encoding), pseudonyms once per
distinct (client, period) and countries once per distinct address, so a batch costs little more
than its number of distinct values.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import hmac
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from huntlab.errors import ConfigError

MASK = "REDACTED"
UNKNOWN_COUNTRY = "ZZ"
PSEUDONYM_HEX = 32
CACHE_ENTRIES = 200_000  # per cache; cleared when full (a cache miss only costs time)

# The look-behind makes a match start only where a local part starts: linear, not quadratic, on
# long runs of address characters (these are Python `re` patterns, which backtrack).
_EMAIL = (
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+(?:@|%40|%2540)"
    r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
)
_SENSITIVE_PARAMS = (
    "email|e-mail|mail|emailaddress|user|username|user_name|userid|user_id|uid|login|account|"
    "name|fullname|first_name|last_name|phone|mobile|tel|ssn|token|access_token|id_token|"
    "refresh_token|auth|authorization|code|session|sessionid|session_id|sid|phpsessid|jsessionid|"
    "aspsessionid|key|apikey|api_key|password|passwd|pwd|pass|secret|signature|sig|otp|ticket"
)
# (pattern, replacement) applied in order to every URL.
URL_RULES: tuple[tuple[str, str], ...] = (
    (r"(?i)^([a-z][a-z0-9+.\-]*://)[^/?#@\\]*@", r"\1"),  # user-info
    (_EMAIL, MASK),
    (rf"(?i)([?&;](?:{_SENSITIVE_PARAMS})=)[^&#;?]*", rf"\1{MASK}"),
    (r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*", MASK),  # JWT
    (r"/[A-Za-z0-9_\-]{32,}", f"/{MASK}"),  # opaque tokens in the path
)
# (pattern, replacement) applied in order to free text (crash signatures).
TEXT_RULES: tuple[tuple[str, str], ...] = (
    (_EMAIL, MASK),
    (r"(?i)([a-z]:\\+(?:users|documents and settings)\\+)[^\\/:*?\"<>|\s]+", r"\1USER"),
    (r"(?i)(/(?:home|users)/)[^/\s]+", r"\1USER"),
    (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "IP"),
    (r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b", "IP"),
    (r"\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{0,4}\b", "IP"),
)
URL_FIELDS = ("url",)
TEXT_FIELDS = ("crash_signature", "detection_name", "os", "product_version", "family")


def load_key(key_file: str | None, key_env: str | None) -> bytes:
    """The master pseudonym key from a file or the environment (never from huntlab.toml)."""
    if key_file:
        path = Path(key_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the pseudonym key file {path}: {exc}",
                "Create it with 32+ random bytes in hex, readable only by huntlab",
            ) from exc
    else:
        text = os.environ.get(key_env or "", "").strip()
        if not text:
            raise ConfigError(
                f"no pseudonym key: ${key_env or 'HUNTLAB_PSEUDONYM_KEY'} is not set",
                "export HUNTLAB_PSEUDONYM_KEY=$(python -c 'import secrets; "
                "print(secrets.token_hex(32))') or set key_file in [upstream.anonymize]",
            )
    if len(text) < 32:
        raise ConfigError(
            "the pseudonym key is shorter than 32 characters",
            "Use at least 16 random bytes, e.g. secrets.token_hex(32)",
        )
    return text.encode()


def period_of(ts: dt.datetime, rotation: str) -> str:
    """The label of the key period an event time falls in."""
    if rotation == "none":
        return "all"
    if rotation == "day":
        return ts.strftime("%Y-%m-%d")
    if rotation == "week":
        year, week, _ = ts.isocalendar()
        return f"{year}-W{week:02d}"
    return ts.strftime("%Y-%m")


class Pseudonymizer:
    """Client id -> HMAC-SHA256 pseudonym under a key derived for the event's period."""

    def __init__(
        self, key: bytes, rotation: str = "month", *, link_across_periods: bool = False
    ) -> None:
        self._master = key
        self.rotation = "none" if link_across_periods else rotation
        self._period_keys: dict[str, bytes] = {}
        # (client, period) -> pseudonym across batches: clients report again and again.
        self._cache: dict[tuple[str, str], str] = {}

    def period_key(self, period: str) -> bytes:
        key = self._period_keys.get(period)
        if key is None:
            key = hmac.digest(self._master, b"huntlab-pseudonym:" + period.encode(), "sha256")
            self._period_keys[period] = key
        return key

    def pseudonym(self, client_id: str, when: dt.datetime | None = None) -> str:
        when = when or dt.datetime.now(dt.UTC)
        key = self.period_key(period_of(when, self.rotation))
        return hmac.digest(key, client_id.encode(), "sha256").hex()[:PSEUDONYM_HEX]

    def periods(self, ts: pa.ChunkedArray | None, n: int) -> list[str]:
        """The period label of every event time (vectorised; a missing time counts as now)."""
        now = period_of(dt.datetime.now(dt.UTC), self.rotation)
        if ts is None or self.rotation == "none":
            return [now] * n
        fmt = {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}[self.rotation]
        labels = pc.strftime(ts, format=fmt)
        return pc.fill_null(labels, now).to_pylist()

    def column(self, clients: pa.ChunkedArray, ts: pa.ChunkedArray | None) -> pa.Array:
        """Pseudonyms of a column, computed once per distinct (client, period)."""
        digest = hmac.digest
        if ts is None or self.rotation == "none":
            key = self.period_key(self.periods(None, 1)[0])
            return _map_unique(clients, lambda c: digest(key, c.encode(), "sha256").hex()[:32])
        ids = clients.to_pylist()
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.clear()
        cache = self._cache
        out: list[str | None] = []
        for cid, period in zip(ids, self.periods(ts, len(ids))):
            if cid is None:
                out.append(None)
                continue
            p = cache.get((cid, period))
            if p is None:
                p = digest(self.period_key(period), cid.encode(), "sha256").hex()[:PSEUDONYM_HEX]
                cache[(cid, period)] = p
            out.append(p)
        return pa.array(out, pa.string())


class GeoTable:
    """IP ranges -> ISO country, looked up by bisection (IPv4 and IPv6 in one sorted list)."""

    def __init__(self, ranges: list[tuple[int, int, str]]) -> None:
        self._ranges = sorted(ranges)
        self._starts = [r[0] for r in self._ranges]
        self._cache: dict[str, str] = {}

    @classmethod
    def empty(cls) -> GeoTable:
        return cls([])

    @classmethod
    def from_csv(cls, path: str | Path) -> GeoTable:
        """Rows of start,end,country (a header row is skipped)."""
        p = Path(path).expanduser()
        ranges: list[tuple[int, int, str]] = []
        try:
            with open(p, newline="", encoding="utf-8") as f:
                for i, row in enumerate(csv.reader(f)):
                    if not row or row[0].strip().lower() == "start":
                        continue
                    try:
                        lo, hi = (_ip_key(row[0].strip()), _ip_key(row[1].strip()))
                        ranges.append((lo, hi, row[2].strip().upper()))
                    except (ValueError, IndexError) as exc:
                        raise ConfigError(
                            f"{p} line {i + 1}: not start,end,country: {row}", "Fix the geo table"
                        ) from exc
        except OSError as exc:
            raise ConfigError(
                f"cannot read geo_table {p}: {exc}", "Fix [upstream.anonymize] geo_table"
            ) from exc
        return cls(ranges)

    def country(self, ip: str | None) -> str:
        if not ip:
            return UNKNOWN_COUNTRY
        hit = self._cache.get(ip)
        if hit is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            hit = self._cache[ip] = self._lookup(ip)
        return hit

    def _lookup(self, ip: str) -> str:
        try:
            key = _ip_key(ip.strip())
        except ValueError:
            return UNKNOWN_COUNTRY
        i = bisect.bisect_right(self._starts, key) - 1
        if i >= 0 and self._ranges[i][0] <= key <= self._ranges[i][1]:
            return self._ranges[i][2]
        return UNKNOWN_COUNTRY


def _ip_key(text: str) -> int:
    """IPv4 addresses map into ::ffff:0:0/96 so both families share one ordering."""
    try:
        return (0xFFFF << 32) | int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text.split("%")[0]), "big")
    except OSError as exc:
        raise ValueError(f"not an IP address: {text!r}") from exc


def _compile(rules: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    compiled = [(re.compile(p), r) for p, r in rules]

    @functools.lru_cache(maxsize=CACHE_ENTRIES)  # the same URLs and signatures recur
    def mask(value: str) -> str:
        for pattern, repl in compiled:
            value = pattern.sub(repl, value)
        return value

    return mask


mask_url = _compile(URL_RULES)
mask_text = _compile(TEXT_RULES)


def _map_unique(col: pa.ChunkedArray | pa.Array, fn: Callable[[str], str]) -> pa.Array:
    """fn over each distinct non-null value of a string column, mapped back to every row."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count == len(col):
        return col
    enc = pc.dictionary_encode(col)
    values = [None if v is None else fn(v) for v in enc.dictionary.to_pylist()]
    return pc.take(pa.array(values, pa.string()), enc.indices)


class Anonymizer:
    """Applies every rule above to a batch (Arrow) or to one quarantined record (a dict)."""

    def __init__(self, pseudonymizer: Pseudonymizer, geo: GeoTable) -> None:
        self.pseudonymizer = pseudonymizer
        self.geo = geo

    def anonymize(self, table: pa.Table, peer_ip: str | None) -> pa.Table:
        """Pseudonymize, coarsen the IP to `country`, mask URLs and text; `ip` is dropped."""
        names = table.column_names
        ts = table.column("ts") if "ts" in names else None
        if "client_id" in names:
            table = _replace(
                table, "client_id", self.pseudonymizer.column(table.column("client_id"), ts)
            )
        peer_country = pa.scalar(self.geo.country(peer_ip), pa.string())
        if "ip" in names:
            countries = pc.fill_null(
                _map_unique(table.column("ip"), self.geo.country), peer_country
            )
            table = table.drop_columns(["ip"])
        else:
            countries = pa.array([peer_country.as_py()] * table.num_rows, pa.string())
        table = _replace(table, "country", countries)
        for name in URL_FIELDS:
            if name in table.column_names:
                table = _replace(table, name, _map_unique(table.column(name), mask_url))
        for name in TEXT_FIELDS:
            if name in table.column_names:
                table = _replace(table, name, _map_unique(table.column(name), mask_text))
        return table

    def anonymize_record(
        self, record: dict[str, Any], peer_ip: str | None, keep: tuple[str, ...]
    ) -> dict[str, Any]:
        """A quarantined record: known fields masked, unknown ones only counted, ip -> country."""
        out: dict[str, Any] = {}
        for key in keep:
            if key not in record or key == "ip":
                continue
            value = record[key]
            if key == "client_id" and value is not None:
                value = self.pseudonymizer.pseudonym(str(value))
            elif key in URL_FIELDS and isinstance(value, str):
                value = mask_url(value)
            elif isinstance(value, str):
                value = mask_text(value)
            elif not isinstance(value, int | float | bool | type(None)):
                value = mask_text(repr(value)[:1024])
            out[key] = value
        ip = record.get("ip")
        out["country"] = self.geo.country(ip if isinstance(ip, str) else peer_ip)
        unknown = [k for k in record if k not in keep and k != "ip"]
        if unknown:
            out["unknown_fields"] = len(unknown)
        return out


def _replace(table: pa.Table, name: str, col: Any) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, col)
    return table.append_column(name, col)
