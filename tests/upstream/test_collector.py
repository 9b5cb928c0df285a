"""The collector end to end over real HTTP: acceptance, rejection, idempotence, privacy, crashes."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from tests.upstream.conftest import KEYS, Server

pytestmark = pytest.mark.upstream

AUTH = {"Authorization": f"Bearer {KEYS['free_av']}"}
RAW_CLIENT = "7d1c4bb2-0c55-4c3e-9a55-client-raw-id-42"
EMAIL = "alice.victim@example.org"


def event(i: int = 0, **over: object) -> dict:
    base = {
        "event_type": "blocked_url",
        "ts": "2026-11-30T10:00:00Z",
        "client_id": RAW_CLIENT,
        "product": "free_av",
        "product_version": "24.3.1",
        "os": "win11",
        "url": f"http://login.example-phish.com/verify?email={EMAIL}&x={i}",
        "hit_count": 1,
        "ip": "10.2.3.4",
    }
    base.update(over)
    return base


def post(
    server: Server,
    records: list,
    *,
    batch_id: str | None = None,
    gz: bool = True,
    headers: dict | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    body = raw if raw is not None else b"\n".join(json.dumps(r).encode() for r in records)
    h = {**AUTH, **(headers or {})}
    if gz and raw is None:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    if batch_id:
        h["X-Batch-Id"] = batch_id
    return httpx.post(server.url + "/v1/upstream", content=body, headers=h, timeout=30)


def compact(server: Server) -> dict[str, int]:
    from huntlab.upstream.compact import compact as run
    from huntlab.upstream.log import SegmentLog
    from huntlab.workspace import Workspace

    ws = Workspace(server.ws_root)
    log = SegmentLog(ws.root / ws.config.upstream.log_dir)
    try:
        return run(ws, log).per_dataset
    finally:
        log.close()


def rows(server: Server, dataset: str) -> list[dict]:
    from huntlab.connectors.base import connector_for
    from huntlab.workspace import Workspace

    ws = Workspace(server.ws_root)
    return connector_for(ws.store.get_dataset(dataset)).read().to_pylist()


def test_accepts_batch_and_is_idempotent(collector: Server) -> None:
    batch = [event(i) for i in range(50)]
    r = post(collector, batch, batch_id="b-1")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "batch_id": "b-1",
        "accepted": 50,
        "rejected": 0,
        "duplicate": False,
        "reasons": [],
    }
    r = post(collector, batch, batch_id="b-1")
    assert r.json()["duplicate"] is True
    collector.stop()
    assert compact(collector)["upstream_blocked_url"] == 50
    got = rows(collector, "upstream_blocked_url")
    assert len(got) == 50 and len({g["event_id"] for g in got}) == 50
    assert all(g["country"] == "BR" and len(g["client_id"]) == 32 for g in got)
    assert all(EMAIL not in g["url"] and "REDACTED" in g["url"] for g in got)


def test_json_array_and_missing_batch_id(collector: Server) -> None:
    body = json.dumps([event(1), event(2)]).encode()
    r1 = post(collector, [], raw=body)
    r2 = post(collector, [], raw=body)
    assert r1.json()["accepted"] == 2 and r2.json()["duplicate"] is True


def test_bad_events_are_quarantined_not_fatal(collector: Server) -> None:
    future = "2099-01-01T00:00:00Z"
    good = [event(i) for i in range(5)]
    bad = [
        event(event_type="telemetry_v9"),
        event(ts=future),
        event(hit_count="many"),
        event(crash_signature="x" * 100_000),
        "not an object",
        {k: v for k, v in event().items() if k != "client_id"},
    ]
    lines = b"\n".join(json.dumps(r).encode() for r in good + bad) + b"\n{broken json\n\xff\xfe\n"
    r = post(collector, [], raw=lines, batch_id="mixed")
    body = r.json()
    assert r.status_code == 200
    assert body["accepted"] == 5 and body["rejected"] == 8
    reasons = {x["reason"] for x in body["reasons"]}
    assert len(reasons) == 5  # the first few reasons, most common first
    m = httpx.get(collector.url + "/metrics").text
    assert "huntlab_upstream_accepted_total 5" in m
    assert "huntlab_upstream_quarantined_total 8" in m
    assert "huntlab_upstream_request_seconds_count 1" in m
    collector.stop()
    per = compact(collector)
    assert per["upstream_quarantine"] == 8
    q = rows(collector, "upstream_quarantine")
    assert {
        "unknown_event_type",
        "future_ts",
        "bad_type:hit_count",
        "oversized:crash_signature",
        "not_an_object",
        "malformed_json",
        "invalid_utf8",
    } <= {x["reason"].split(";")[0] for x in q} | {r for x in q for r in x["reason"].split(";")}


@pytest.mark.parametrize(
    "case",
    ["no_key", "bad_key", "garbage", "broken_gzip", "too_big", "empty", "json_object_array_broken"],
)
def test_requests_that_are_not_batches_get_4xx(collector: Server, case: str) -> None:
    if case == "no_key":
        r = httpx.post(collector.url + "/v1/upstream", content=b"{}")
        assert r.status_code == 401
    elif case == "bad_key":
        r = httpx.post(
            collector.url + "/v1/upstream", content=b"{}", headers={"Authorization": "Bearer nope"}
        )
        assert r.status_code == 401
    elif case == "garbage":
        r = post(collector, [], raw=b"hello world, not a batch")
        assert r.status_code == 400 and "JSON" in r.json()["error"]
    elif case == "broken_gzip":
        r = post(
            collector, [], raw=gzip.compress(b"{}" * 100)[:20], headers={"Content-Encoding": "gzip"}
        )
        assert r.status_code == 400 and "gzip" in r.json()["error"]
    elif case == "too_big":
        r = post(collector, [], raw=b" " * (17 * 1024 * 1024))
        assert r.status_code == 413
    elif case == "empty":
        r = post(collector, [], raw=b"")
        assert r.status_code == 400
    else:
        r = post(collector, [], raw=b'[{"a": 1}, ')
        assert r.status_code == 400
    assert httpx.get(collector.url + "/healthz").status_code == 200


def _all_text(root: Path) -> bytes:
    """Every byte huntlab wrote, with Parquet files decoded (their pages are compressed)."""
    out = []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":
            out.append(json.dumps(pq.read_table(p).to_pylist(), default=str).encode())
        else:
            out.append(p.read_bytes())
    return b"\n".join(out)


def test_nothing_identifying_is_stored(collector: Server) -> None:
    ips = ["10.2.9.9", "2001:db8::77"]
    batch = [
        event(
            i,
            ip=ips[i % 2],
            crash_signature=f"C:\\Users\\alice\\app.exe mail {EMAIL}",
            event_type="crash" if i % 3 == 0 else "blocked_url",
        )
        for i in range(30)
    ]
    batch.append({"client_id": RAW_CLIENT, "ip": ips[0], "note": EMAIL})  # quarantined
    assert post(collector, batch, batch_id="privacy").status_code == 200
    assert post(collector, [], raw=b"\xff" + RAW_CLIENT.encode()).status_code == 400
    collector.stop()
    compact(collector)
    blob = _all_text(collector.ws_root)
    for secret in (RAW_CLIENT, EMAIL, "alice", *ips, "2001:db8::77"):
        assert secret.encode() not in blob, secret


def test_sigkill_mid_stream_loses_nothing_acknowledged(collector: Server) -> None:
    from huntlab.upstream.simulate import simulate

    result: dict = {}

    def run() -> None:
        result["res"] = simulate(
            collector.url, KEYS, events=30_000, batch_size=500, bad_share=0.02, seed=5
        )

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 60
    while (
        time.time() < deadline
        and "huntlab_upstream_requests_total 0" in httpx.get(collector.url + "/metrics").text
    ):
        time.sleep(0.05)
    time.sleep(0.5)
    collector.kill()
    time.sleep(0.5)
    collector.start()
    t.join(180)
    res = result["res"]
    assert res.events == 30_000 and res.retries > 0
    collector.stop()
    per = compact(collector)
    stored = sum(n for name, n in per.items() if name != "upstream_quarantine")
    assert stored == res.accepted
    ids = [
        r["event_id"]
        for name in per
        if name != "upstream_quarantine"
        for r in rows(collector, name)
    ]
    assert len(ids) == len(set(ids)) == res.accepted
