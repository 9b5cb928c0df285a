"""Arbitrary bytes and arbitrary JSON at the collector: a 4xx or an answer, never a crash or a
5xx, and nothing un-anonymized written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.upstream.conftest import KEYS, Server

from huntlab.upstream.collector import BadRequest, Collector
from huntlab.upstream.log import START, SegmentLog

pytestmark = pytest.mark.upstream

RAW_ID = "5b7f2e1c-raw-client-identifier-0042"
EMAIL = "carol.target@example.net"
IP = "10.3.77.201"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    [
        "event_type",
        "ts",
        "client_id",
        "url",
        "hit_count",
        "os",
        "ip",
        "crash_signature",
        "file_hash",
        "product",
        "family",
        "schema_version",
    ]
)
# Records that carry the secrets in their identifying fields, plus arbitrary other content.
records = st.builds(
    lambda extra, etype: {
        "client_id": RAW_ID,
        "ip": IP,
        "event_type": etype,
        "ts": "2026-11-30T10:00:00Z",
        "url": f"http://x.example/?email={EMAIL}",
        "crash_signature": f"/home/carol/app mail {EMAIL}",
        **extra,
    },
    st.dictionaries(fields, json_values, max_size=4),
    st.sampled_from(["crash", "blocked_url", "nonsense"]),
)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.lists(json_values, max_size=5).map(lambda v: json.dumps(v).encode()),
    st.lists(records | json_values, min_size=1, max_size=6).map(
        lambda rs: b"\n".join(json.dumps(r).encode() for r in rs)
    ),
)


def log_text(log_dir: Path) -> bytes:
    """Everything the log holds, decoded (its frames are compressed Arrow)."""
    log = SegmentLog(log_dir)
    return b"\n".join(
        json.dumps(f.table.to_pylist(), default=str).encode()
        for f in log.read_from(START, include_compacted=True)
    )


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory):
    from tests.upstream.conftest import configure

    from huntlab.workspace import Workspace

    root = tmp_path_factory.mktemp("prop") / "ws"
    env = configure(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("HUNTLAB_PSEUDONYM_KEY", env["HUNTLAB_PSEUDONYM_KEY"])
    collector = Collector(Workspace(root), {k.encode(): p for p, k in KEYS.items()}, workers=0)
    yield collector
    collector.close()
    mp.undo()


@given(body=bodies, gz=st.booleans())
@settings(max_examples=400, deadline=None)
def test_ingest_answers_or_refuses_cleanly(in_process: Collector, body: bytes, gz: bool) -> None:
    data = gzip.compress(body) if gz else body
    try:
        ack = in_process.ingest(data, product="free_av", peer_ip=IP, batch_id=None, gzipped=gz)
    except BadRequest as exc:
        assert exc.status in (400, 413)
        return
    assert ack.accepted + ack.rejected >= 0


def test_ingest_wrote_nothing_identifying(in_process: Collector) -> None:
    # Runs after the property test above (same module fixture): scan what it wrote.
    in_process.ingest(
        json.dumps({"client_id": RAW_ID, "ip": IP, "note": EMAIL}).encode(),
        product="free_av",
        peer_ip=IP,
        batch_id="last",
    )
    blob = log_text(in_process.log.dir)
    for secret in (RAW_ID, EMAIL, IP, "carol"):
        assert secret.encode() not in blob, secret
    assert len(blob) > 1000  # the property test did write frames


@given(body=bodies)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_http_endpoint_never_5xx(collector: Server, body: bytes) -> None:
    r = httpx.post(
        collector.url + "/v1/upstream",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {KEYS['free_av']}"},
    )
    assert r.status_code in (200, 400, 413), r.text
    assert ("accepted" in r.json()) == (r.status_code == 200), r.text
