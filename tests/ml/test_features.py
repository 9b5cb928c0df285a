"""Canonical URLs and features: the cases the shared data holds, and any text at all."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huntlab.ml.canonical import canonical_text, canonicalize
from huntlab.ml.domains import registered_domains, split_hosts
from huntlab.ml.features import FEATURE_VERSION, LEXICAL_FEATURES, FeatureSpec, position_tokens

pytestmark = pytest.mark.ml


def _parts(urls: list[str]) -> list[dict]:
    con = duckdb.connect()
    try:
        return canonicalize(con, pa.array(urls, pa.string())).to_pylist()
    finally:
        con.close()


def test_canonicalize_folds_scheme_www_case_quotes_entities_and_encoding() -> None:
    rows = _parts(
        [
            '"HTTP://WWW.Example.COM/a%20b/C?x=1&amp;amp;y=2"',
            "https://www2.example.com:8080/p#frag",
            "example.com",
            "http://user:pw@evil.test/login",
            "",
        ]
    )
    assert rows[0]["host"] == "example.com"
    assert rows[0]["path"] == "/a b/C"
    assert rows[0]["query"] == "x=1&y=2"
    assert rows[1]["host"] == "example.com" and rows[1]["port"] == "8080"
    assert rows[1]["fragment"] == "frag"
    assert rows[2]["host"] == "example.com" and rows[2]["path"] == ""
    assert rows[3]["host"] == "evil.test" and rows[3]["has_userinfo"]
    assert rows[4]["host"] == ""


def test_same_url_in_http_and_https_gives_the_same_text() -> None:
    con = duckdb.connect()
    parts = canonicalize(con, pa.array(["http://www.a.com/X", "https://a.com/x"]))
    assert canonical_text(parts).to_pylist() == ["a.com/x", "a.com/x"]


def test_invalid_percent_encoding_is_kept_not_dropped() -> None:
    rows = _parts(["http://a.com/%E7%BD/%ZZ"])
    assert rows[0]["path"] == "/%E7%BD/%ZZ"


def test_registered_domains_use_the_public_suffix_list() -> None:
    doms = split_hosts(pa.array(["a.b.bbc.co.uk", "x.github.io", "1.2.3.4", "", "localhost"]))
    assert doms["reg_domain"].to_pylist() == [
        "bbc.co.uk",
        "x.github.io",
        "1.2.3.4",
        "",
        "localhost",
    ]
    assert doms["private_suffix"].to_pylist() == [False, True, False, False, False]
    assert registered_domains(["https://www.mail.google.com/x"]).to_pylist() == ["google.com"]


def _feature(urls: list[str], name: str, spec: FeatureSpec | None = None) -> list[float]:
    f = (spec or FeatureSpec()).compute(urls)
    return f.lexical[:, LEXICAL_FEATURES.index(name)].tolist()


@pytest.mark.parametrize(
    ("name", "hit", "miss"),
    [
        ("is_ip", "http://63.247.80.138/~x/chase/", "http://chase.com/"),
        ("brand_outside_rd", "http://secure-login.test/paypal/signin", "https://paypal.com/signin"),
        ("brand_in_rd_combo", "http://paypal-verify.com/", "http://paypal.com/"),
        ("brand_lookalike", "http://paypa1.com/", "http://example.com/"),
        ("punycode", "http://xn--pypal-4ve.com/", "http://paypal.com/"),
        ("executable_ext", "http://a.test/files/setup.exe", "http://a.test/files/setup.html"),
        ("embedded_url", "http://r.test/go.php?url=http://evil.test/", "http://r.test/go.php"),
        ("abuse_tld", "http://x.tk/", "http://x.com/"),
        ("has_port", "http://x.com:8081/", "http://x.com:443/"),
        ("email_in_url", "http://x.com/i.html#bob@corp.com", "http://x.com/i.html"),
    ],
)
def test_attacker_behaviour_features(name: str, hit: str, miss: str) -> None:
    assert _feature([hit, miss], name) == [1.0, 0.0]


def test_subdomain_depth_and_popularity(feature_spec: FeatureSpec) -> None:
    urls = ["http://a.b.c.google.com/", "http://google.com/", "http://zz-unknown-site.test/"]
    assert _feature(urls, "sub_depth") == [3.0, 0.0, 0.0]
    assert _feature(urls, "popular", feature_spec) == [1.0, 1.0, 0.0]


def test_features_are_row_aligned_and_finite(url_sample: pa.Table, feature_spec) -> None:
    f = feature_spec.compute(url_sample["url"])
    assert f.lexical.shape == (url_sample.num_rows, len(LEXICAL_FEATURES))
    assert np.isfinite(f.lexical).all()
    assert len(f.text) == url_sample.num_rows == len(f.reg_domains)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=120), min_size=1, max_size=20))
def test_any_text_featurizes_without_error(urls: list[str]) -> None:
    f = FeatureSpec().compute(urls)
    assert f.lexical.shape == (len(urls), len(LEXICAL_FEATURES))
    assert np.isfinite(f.lexical).all()


@settings(max_examples=40, deadline=None)
@given(
    st.from_regex(
        r"[a-z0-9]{1,12}(\.[a-z0-9]{1,8}){0,3}\.(com|net|co\.uk|io)", fullmatch=True
    ).filter(lambda h: not h.startswith("www")),
    st.from_regex(r"(/[A-Za-z0-9_-]{0,10}){0,4}", fullmatch=True),
)
def test_scheme_and_www_never_change_the_features(host: str, path: str) -> None:
    f = FeatureSpec().compute([f"http://{host}{path}", f"https://www.{host}{path}"])
    assert f.text[0] == f.text[1]
    assert (f.lexical[0] == f.lexical[1]).all()


def test_position_tokens_tag_words_by_part_and_leave_the_site_name_out() -> None:
    texts, docs = position_tokens(
        ["paypal.secure.evilsite.com"],
        ["evilsite.com"],
        ["/WP-Admin/css/Login.PHP"],
        ["user=bob&next=home"],
    )
    words = set(docs[0].split())
    assert {"s:paypal", "s:secure", "p:wp", "p:admin", "p:css", "f:login", "e:php"} <= words
    assert {"k:user", "k:next", "q:bob", "q:home", "d:3"} <= words
    assert not [w for w in words if "evilsite" in w]  # the registered domain names one site
    assert texts == ["/wp-admin/css/login.php?user=bob&next=home"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=8))
def test_position_tokens_take_any_text(paths: list[str]) -> None:
    n = len(paths)
    texts, docs = position_tokens(["a.b.example.org"] * n, ["example.org"] * n, paths, paths)
    assert len(texts) == len(docs) == n


def test_urlfeat_1_specs_still_featurize_as_before() -> None:
    old = FeatureSpec(version="urlfeat-1")
    feats = old.compute(["http://login.bank.example.com/a/b.php?x=1"])
    assert feats.tokens is None and feats.path_query is None
    new = FeatureSpec().compute(["http://login.bank.example.com/a/b.php?x=1"])
    assert new.spec.version == FEATURE_VERSION and "s:login" in new.tokens[0]
