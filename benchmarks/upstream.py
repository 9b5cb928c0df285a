"""Load benchmark of the upstream collector on loopback: events/s and acknowledgement latency.

Two concurrent clients send gzipped batches of 1,000 realistic events (bounded: --batches in
all, --seconds at most) to a real `huntlab upstream serve` process; beside it, the same load
against an ASGI endpoint that only reads the body and answers (the transport ceiling of
uvicorn on this machine), so the collector's own cost shows as a ratio.

Usage: python -m benchmarks.upstream [--batches 200] [--seconds 60] [--clients 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from huntlab.net import free_port

KEY = "bench-key-" + "x" * 24


def _wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def start_collector(root: Path) -> tuple[subprocess.Popen, str]:
    from huntlab.upstream.demo_geo import write_demo_geo
    from huntlab.workspace import Workspace

    Workspace.init(root)
    geo = write_demo_geo(root / "geo.csv")
    toml = (root / "huntlab.toml").read_text()
    toml = toml.replace('# geo_table = "/etc/huntlab/ip-country.csv"', f'geo_table = "{geo}"')
    (root / "huntlab.toml").write_text(toml)
    env = {**os.environ, "HUNTLAB_KEY_FREE_AV": KEY, "HUNTLAB_PSEUDONYM_KEY": secrets.token_hex(32)}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "huntlab.cli", "upstream", "serve", "--port", str(port)],
        cwd=root,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(url, proc)
    return proc, url


def start_ceiling() -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (
        "import uvicorn\n"
        "from starlette.applications import Starlette\n"
        "from starlette.responses import JSONResponse\n"
        "from starlette.routing import Route\n"
        "async def up(r):\n    b = await r.body()\n    return JSONResponse({'n': len(b)})\n"
        "async def hz(r):\n    return JSONResponse({})\n"
        "app = Starlette(routes=[Route('/v1/upstream', up, methods=['POST']),"
        " Route('/healthz', hz)])\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    _wait(url, proc)
    return proc, url


def bodies(n_batches: int, size: int) -> list[bytes]:
    from huntlab.upstream.simulate import batches

    out = []
    for recs in batches(n_batches * size, size, seed=3, bad_share=0.01):
        for r in recs:
            if isinstance(r, dict):
                r["product"] = "free_av"
        out.append(gzip.compress(b"\n".join(json.dumps(r).encode() for r in recs), 1))
        if len(out) == n_batches:
            break
    return out


def load(url: str, payloads: list[bytes], clients: int, seconds: float, size: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(enumerate(payloads))
    stop_at = time.perf_counter() + seconds
    sent = 0

    def worker() -> None:
        nonlocal sent
        with httpx.Client(timeout=60) as c:
            while time.perf_counter() < stop_at:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                i, body = item
                t0 = time.perf_counter()
                r = c.post(
                    url + "/v1/upstream",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {KEY}",
                        "Content-Encoding": "gzip",
                        "X-Batch-Id": f"bench-{time.time_ns()}-{i}",
                    },
                )
                r.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    sent += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "batches": sent,
        "events_per_s": sent * size / wall,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    print(f"preparing {args.batches} batches of {args.batch_size} events ...", flush=True)
    payloads = bodies(args.batches, args.batch_size)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, starter in (
            ("ceiling", start_ceiling),
            ("collector", lambda: start_collector(Path(tmp) / "ws")),
        ):
            proc, url = starter()
            try:
                load(url, payloads[:20], args.clients, args.seconds, args.batch_size)  # warm-up
                results[name] = load(url, payloads, args.clients, args.seconds, args.batch_size)
            finally:
                proc.terminate()
                proc.wait(10)
    ceiling = results["ceiling"]["events_per_s"]
    print(
        f"\n{args.clients} clients, batches of {args.batch_size} (gzip JSON lines), loopback; "
        "2-core shared machine"
    )
    print(
        f"{'server':<11} {'batches':>8} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'vs ceiling':>11}"
    )
    for name, r in results.items():
        print(
            f"{name:<11} {r['batches']:>8} {r['events_per_s']:>10,.0f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['events_per_s'] / ceiling:>10.2f}x"
        )
    print("target: collector >= 100,000 events/s end to end, p99 < 250 ms")


if __name__ == "__main__":
    main()
