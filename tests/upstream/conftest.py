"""A real collector on loopback: `huntlab upstream serve` in its own process, per test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.services import free_port

KEYS = {
    "free_av": "key-free-" + "a" * 24,
    "internet_security": "key-is-" + "b" * 24,
    "total_protection": "key-tp-" + "c" * 24,
    "premium_security": "key-ps-" + "d" * 24,
}


@dataclass
class Server:
    """A collector process and how to reach it."""

    ws_root: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        log = open(self.ws_root / ".huntlab" / "collector.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huntlab.cli", "upstream", "serve", "--port", str(self.port)],
            cwd=self.ws_root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                out = (self.ws_root / ".huntlab" / "collector.out").read_text()
                raise RuntimeError(f"collector exited: {out[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("collector did not answer /healthz in time")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def configure(root: Path) -> dict[str, str]:
    """A workspace whose huntlab.toml names the key variables and a demo geo table."""
    from huntlab.upstream.demo_geo import write_demo_geo
    from huntlab.workspace import Workspace

    Workspace.init(root)
    geo = write_demo_geo(root / "geo.csv")
    env_names = {p: f"HUNTLAB_KEY_{p.upper()}" for p in KEYS}  # the names `init` writes
    toml = (root / "huntlab.toml").read_text()
    assert all(f'"{v}"' in toml for v in env_names.values())
    toml = toml.replace('# geo_table = "/etc/huntlab/ip-country.csv"', f'geo_table = "{geo}"')
    toml = toml.replace("# dataset_prefix", "segment_mb = 1\n# dataset_prefix")
    (root / "huntlab.toml").write_text(toml)
    env = {**os.environ, "HUNTLAB_PSEUDONYM_KEY": secrets.token_hex(32)}
    env.pop("HUNTLAB_WORKSPACE", None)
    env.update({env_names[p]: k for p, k in KEYS.items()})
    return env


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "ws"
    server = Server(root, free_port(), configure(root))
    server.start()
    yield server
    server.stop()
