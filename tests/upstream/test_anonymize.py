"""The anonymizer: pseudonyms, coarse location, masked URLs and text (with property tests)."""

from __future__ import annotations

import datetime as dt
import string

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huntlab.upstream.anonymize import (
    Anonymizer,
    GeoTable,
    Pseudonymizer,
    _ip_key,
    mask_text,
    mask_url,
)

pytestmark = pytest.mark.upstream

KEY = b"k" * 64
JAN = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
FEB = dt.datetime(2026, 2, 15, tzinfo=dt.UTC)
local = st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum()
)
label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
emails = st.builds(
    lambda u, d, t: f"{u}@{d}.{t}", local, label, st.sampled_from(["com", "org", "de", "co.uk"])
)


def test_pseudonyms_rotate_per_period_unless_linked() -> None:
    p = Pseudonymizer(KEY, "month")
    a, b = p.pseudonym("client-1", JAN), p.pseudonym("client-1", JAN + dt.timedelta(days=3))
    assert a == b and len(a) == 32 and "client" not in a
    assert p.pseudonym("client-1", FEB) != a
    assert Pseudonymizer(b"x" * 64, "month").pseudonym("client-1", JAN) != a
    linked = Pseudonymizer(KEY, "month", link_across_periods=True)
    assert linked.pseudonym("client-1", JAN) == linked.pseudonym("client-1", FEB)


def test_geo_table_ipv4_and_ipv6() -> None:
    geo = GeoTable(
        [
            (_ip_key("10.1.0.0"), _ip_key("10.1.255.255"), "DE"),
            (_ip_key("2001:db8::"), _ip_key("2001:db8::ffff"), "FR"),
        ]
    )
    assert geo.country("10.1.2.3") == "DE" and geo.country("::ffff:10.1.2.3") == "DE"
    assert geo.country("2001:db8::1") == "FR"
    assert {geo.country(x) for x in ("10.2.0.1", "not an ip", "", None)} == {"ZZ"}


def test_batch_is_anonymized() -> None:
    t = pa.table(
        {
            "client_id": ["raw-guid-1", None],
            "ip": ["10.1.2.3", None],
            "ts": pa.array([JAN, None], pa.timestamp("us", tz="UTC")),
            "url": ["https://bob:secret@shop.example/p?user=bob&q=shoes", None],
            "crash_signature": [r"C:\Users\bob\x.dll mail bob@corp.example", None],
        }
    )
    geo = GeoTable([(_ip_key("10.1.0.0"), _ip_key("10.1.255.255"), "DE")])
    out = Anonymizer(Pseudonymizer(KEY), geo).anonymize(t, peer_ip="192.0.2.1").to_pylist()
    assert "ip" not in out[0]
    assert out[0]["country"] == "DE" and out[1]["country"] == "ZZ"
    assert out[0]["client_id"] == Pseudonymizer(KEY).pseudonym("raw-guid-1", JAN)
    assert out[0]["url"] == "https://shop.example/p?user=REDACTED&q=shoes"
    assert "bob" not in out[0]["crash_signature"] and out[1]["client_id"] is None


@given(
    email=emails,
    path=st.lists(label, max_size=3),
    param=st.sampled_from(
        ["email", "mail", "user", "token", "sid", "session_id", "apikey", "password", "x"]
    ),
)
@settings(max_examples=200, deadline=None)
def test_no_email_survives_in_urls(email: str, path: list[str], param: str) -> None:
    for url in (
        f"http://h.example/{'/'.join(path)}?{param}={email}&a=1",
        f"https://{email.split('@')[0]}:pw@h.example/{email}/x",
        f"http://h.example/r?next=http%3A%2F%2Fx%2F%3Fm%3D{email.replace('@', '%40')}",
    ):
        masked = mask_url(url)
        assert email not in masked and email.replace("@", "%40") not in masked, (url, masked)


@given(user=local, email=emails)
@settings(max_examples=200, deadline=None)
def test_free_text_loses_users_emails_and_ips(user: str, email: str) -> None:
    text = (
        f"crash in C:\\Users\\{user}\\AppData\\x.dll and /home/{user}/y "
        f"reported by {email} from 192.168.7.9 and fe80::1:2:3:4"
    )
    masked = mask_text(text)
    for secret in (f"\\{user}\\", f"/{user}/", email, "192.168.7.9", "fe80::1:2:3:4"):
        assert secret not in masked, (secret, masked)


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_masking_never_fails_on_any_text(text: str) -> None:
    assert isinstance(mask_url(text), str) and isinstance(mask_text(text), str)
