"""The event model: schema, required fields, URL domains and validate_batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huntlab.events import (
    EVENT_SCHEMA,
    EVENT_TYPES,
    REQUIRED_FIELDS,
    url_domain,
    url_domains,
    validate_batch,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HASH = "ab" * 32
CLIENT = "0123456789abcdef" * 2


def good_row(kind: str, **over: object) -> dict[str, object]:
    """A valid row of one event type, with overrides."""
    event_type = kind
    ts = datetime(2026, 10, 20, 23, 30, tzinfo=UTC)
    row: dict[str, object] = {
        "event_id": "9f1c2d3e4f5a4b6c8d7e6f5a4b3c2d1e",
        "event_type": event_type,
        "schema_version": 1,
        "ts": ts,
        "event_date": ts.date(),
        "client_id": CLIENT,
        "product": "free_av",
        "product_version": "24.3.1",
        "os": "win11",
        "country": "DE",
    }
    if event_type in ("blocked_infection", "beta_detection", "detection_hits"):
        row.update(
            detection_name="Win32:Emotet-AB [Trj]",
            family="Emotet",
            file_hash=HASH,
            hit_count=7 if event_type == "detection_hits" else 1,
        )
    elif event_type == "crash":
        row.update(crash_signature="avsvc.exe!ScanEngine::Open+0x1f3")
    else:
        row.update(
            url="https://www.Evil.example:8443/login",
            domain="evil.example",
            hit_count=1,
            detection_name="URL:Phishing",
        )
    row.update(over)
    return row


def table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def test_schema_columns_in_order():
    assert EVENT_SCHEMA.names == [
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
        "detection_name",
        "family",
        "file_hash",
        "url",
        "domain",
        "hit_count",
        "crash_signature",
    ]
    assert EVENT_SCHEMA.field("ts").type == pa.timestamp("us", tz="UTC")
    assert EVENT_SCHEMA.field("event_date").type == pa.date32()
    assert EVENT_SCHEMA.field("schema_version").type == pa.int32()
    assert EVENT_SCHEMA.field("hit_count").type == pa.int64()
    assert all(f.nullable for f in EVENT_SCHEMA)


def test_required_fields_cover_every_type():
    assert EVENT_TYPES == (
        "blocked_infection",
        "beta_detection",
        "detection_hits",
        "crash",
        "blocked_url",
    )
    assert set(REQUIRED_FIELDS) == set(EVENT_TYPES)
    for fields in REQUIRED_FIELDS.values():
        assert set(fields) <= set(EVENT_SCHEMA.names)
        assert {"event_id", "ts", "event_date", "client_id", "country"} <= set(fields)
    assert "crash_signature" in REQUIRED_FIELDS["crash"]
    assert "hit_count" not in REQUIRED_FIELDS["crash"]
    assert {"url", "domain"} <= set(REQUIRED_FIELDS["blocked_url"])


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("http://WWW.Example.com:8080/x?y=1", "example.com"),
        ("https://user:pw@Login.Bank.example/a", "login.bank.example"),
        ("www.islandrecovery.com.sg/administrator/config.jpg", "islandrecovery.com.sg"),
        ("77.228.191.183:7890/x", "77.228.191.183"),
        ("ftp://221.131.136.22/inloggen/abnamro.nl.htm", "221.131.136.22"),
        ("http://%C3%87:webmaster@juhaoyong.net/", "juhaoyong.net"),
        ("http://[2001:db8::1]:80/", "2001:db8::1"),
        ("http://evil.example./", "evil.example"),
        ("", None),
        (None, None),
    ],
)
def test_url_domain(url, domain):
    assert url_domain(url) == domain


def test_url_domains_vectorized_matches_scalar():
    urls = pa.array(["http://www.a.com/", "b.org:1", None, "https://c.net?q=@x"])
    assert url_domains(urls).to_pylist() == ["a.com", "b.org", None, "c.net"]


def test_valid_rows_of_every_type_pass():
    rows = [good_row(t) for t in EVENT_TYPES]
    valid, rejected = validate_batch(table(rows), now=NOW)
    assert valid.num_rows == len(rows) and rejected.num_rows == 0
    assert valid.schema == EVENT_SCHEMA
    assert rejected.schema.names == EVENT_SCHEMA.names + ["reason"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (good_row("blocked_infection", event_type="virus_found"), "unknown_event_type"),
        (good_row("blocked_infection", event_type=None), "missing:event_type"),
        (good_row("blocked_infection", file_hash=None), "missing:file_hash"),
        (good_row("blocked_infection", family=""), "missing:family"),
        (good_row("crash", crash_signature=None), "missing:crash_signature"),
        (good_row("blocked_url", url=None, domain=None), "missing:url"),
        (good_row("detection_hits", hit_count=None), "missing:hit_count"),
        (good_row("crash", client_id=None), "missing:client_id"),
        (good_row("crash", ts=NOW + timedelta(days=2), event_date=None), "future_ts"),
        (good_row("blocked_infection", file_hash="abc123"), "malformed:file_hash"),
        (good_row("blocked_infection", file_hash="zz" * 32), "malformed:file_hash"),
        (good_row("crash", client_id="user@example.com"), "malformed:client_id"),
        (good_row("crash", country="Germany"), "malformed:country"),
        (good_row("crash", schema_version=9), "unsupported_schema_version"),
        (good_row("crash", event_date=date(2026, 1, 1)), "event_date_mismatch"),
        (good_row("detection_hits", hit_count=0), "bad_hit_count"),
    ],
)
def test_bad_rows_are_rejected_with_reason(row, reason):
    rows = [good_row("crash"), row, good_row("blocked_url")]
    valid, rejected = validate_batch(table(rows), now=NOW)
    assert valid.num_rows == 2
    assert rejected.num_rows == 1
    assert reason in rejected.column("reason")[0].as_py().split(";")


def test_several_reasons_are_joined():
    row = good_row("blocked_infection", file_hash="nothex", family=None, country="de")
    _, rejected = validate_batch(table([row]), now=NOW)
    reasons = rejected.column("reason")[0].as_py().split(";")
    assert set(reasons) == {"missing:family", "malformed:file_hash", "malformed:country"}


def test_future_limit_is_one_day():
    ok = good_row("crash", ts=NOW + timedelta(hours=23), event_date=None)
    late = good_row("crash", ts=NOW + timedelta(hours=25), event_date=None)
    valid, rejected = validate_batch(table([ok, late]), now=NOW)
    assert valid.num_rows == 1 and rejected.column("reason").to_pylist() == ["future_ts"]


def test_derived_columns_are_filled_and_hashes_lowercased():
    rows = [
        good_row("blocked_url", domain=None, event_date=None),
        good_row("blocked_infection", file_hash=HASH.upper(), client_id=CLIENT.upper()),
    ]
    valid, rejected = validate_batch(table(rows), now=NOW)
    assert rejected.num_rows == 0
    assert valid.column("domain")[0].as_py() == "evil.example"
    assert valid.column("event_date")[0].as_py() == date(2026, 10, 20)
    assert valid.column("file_hash")[1].as_py() == HASH
    assert valid.column("client_id")[1].as_py() == CLIENT


def test_loose_input_is_cast_to_the_schema():
    """Missing and extra columns, naive or string timestamps, other int widths, a RecordBatch."""
    loose = pa.table(
        {
            "event_type": ["crash", "crash", "crash"],
            "event_id": ["a", "b", "c"],
            "schema_version": pa.array([1, 1, 1], pa.int64()),
            "ts": ["2026-10-02T01:02:03Z", "2026-10-02 01:02:03.5+02:00", None],
            "client_id": [CLIENT] * 3,
            "product": ["free_av"] * 3,
            "product_version": ["24.3.1"] * 3,
            "os": ["win10"] * 3,
            "country": ["US"] * 3,
            "crash_signature": ["x!y+0x1"] * 3,
            "something_else": [1, 2, 3],
        }
    ).to_batches()[0]
    valid, rejected = validate_batch(loose, now=NOW)
    assert valid.schema == EVENT_SCHEMA
    assert valid.num_rows == 2
    assert valid.column("ts")[1].as_py() == datetime(2026, 10, 1, 23, 2, 3, 500000, tzinfo=UTC)
    assert valid.column("event_date")[1].as_py() == date(2026, 10, 1)
    assert set(rejected.column("reason")[0].as_py().split(";")) == {
        "missing:ts",
        "missing:event_date",
    }

    naive = table([good_row("crash")]).set_column(
        3, "ts", pa.array([datetime(2026, 10, 20, 23, 30)], pa.timestamp("ns"))
    )
    valid, _ = validate_batch(naive, now=NOW)
    assert valid.column("ts")[0].as_py() == datetime(2026, 10, 20, 23, 30, tzinfo=UTC)


def test_uncastable_column_is_a_reason_not_a_crash():
    t = table([good_row("crash"), good_row("crash", ts=None)])
    t = t.set_column(3, "ts", pa.array(["yesterday", None]))
    valid, rejected = validate_batch(t, now=NOW)
    assert valid.num_rows == 0 and rejected.num_rows == 2
    assert "bad_type:ts" in rejected.column("reason")[0].as_py()
    assert "bad_type:ts" not in rejected.column("reason")[1].as_py()


def test_empty_input():
    valid, rejected = validate_batch(EVENT_SCHEMA.empty_table(), now=NOW)
    assert valid.num_rows == rejected.num_rows == 0
    assert rejected.schema.names[-1] == "reason"
    valid, rejected = validate_batch(pa.table({}), now=NOW)
    assert valid.schema == EVENT_SCHEMA and valid.num_rows == 0


# ---- property tests -------------------------------------------------------------------------

_text = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=66),
)
_rows = st.fixed_dictionaries(
    {
        "event_id": _text,
        "event_type": st.one_of(st.none(), st.sampled_from(EVENT_TYPES), st.text(max_size=8)),
        "schema_version": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        "ts": st.one_of(
            st.none(), st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1))
        ),
        "event_date": st.one_of(st.none(), st.dates(min_value=date(1971, 1, 1))),
        "client_id": _text,
        "product": _text,
        "product_version": _text,
        "os": _text,
        "country": st.one_of(_text, st.sampled_from(["US", "BR", "de"])),
        "detection_name": _text,
        "family": _text,
        "file_hash": _text,
        "url": st.one_of(st.none(), st.text(max_size=40), st.just("http://www.x.org:80/a")),
        "domain": _text,
        "hit_count": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        "crash_signature": _text,
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_rows, max_size=25))
def test_validate_never_crashes_and_keeps_every_row(rows):
    t = table(rows)
    valid, rejected = validate_batch(t, now=NOW)
    assert valid.num_rows + rejected.num_rows == t.num_rows
    assert valid.schema == EVENT_SCHEMA
    assert rejected.schema.names == EVENT_SCHEMA.names + ["reason"]
    assert all(r for r in rejected.column("reason").to_pylist())
    for row in valid.to_pylist():
        assert row["event_type"] in EVENT_TYPES
        for name in REQUIRED_FIELDS[row["event_type"]]:
            assert row[name] is not None and row[name] != ""
        assert row["ts"] <= NOW + timedelta(days=1)
        assert row["event_date"] == row["ts"].date()


_column_values = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-(10**6), 10**6)), min_size=4, max_size=4),
    st.lists(st.one_of(st.none(), st.text(max_size=10)), min_size=4, max_size=4),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True)), min_size=4, max_size=4),
    st.lists(st.one_of(st.none(), st.booleans()), min_size=4, max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(EVENT_SCHEMA.names + ["extra"]), _column_values))
def test_validate_never_crashes_on_wrongly_typed_columns(columns):
    t = pa.table({k: pa.array(v) for k, v in columns.items()}) if columns else pa.table({})
    valid, rejected = validate_batch(t, now=NOW)
    assert valid.num_rows + rejected.num_rows == t.num_rows
    assert valid.schema == EVENT_SCHEMA
    assert pc.all(pc.not_equal(rejected.column("reason"), "")).as_py() in (True, None)
