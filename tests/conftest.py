"""Shared fixtures: temporary workspaces with sample telemetry, and the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

# Fixture modules of the real services (one per service; see tests/services/__init__.py).
pytest_plugins: list[str] = [
    "tests.services.cassandra",
    "tests.services.postgres",
    "tests.services.spark",
]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside the repository")
    return SHARED_DATA.resolve()


@pytest.fixture()
def empty_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from huntlab.workspace import Workspace

    monkeypatch.delenv("HUNTLAB_WORKSPACE", raising=False)
    return Workspace.init(tmp_path / "ws")


@pytest.fixture(scope="session")
def sample_ws(tmp_path_factory: pytest.TempPathFactory):
    """A demo workspace with 30k events and the bundled jobs (shared: tests must not write)."""
    from huntlab.demo import install_jobs, load_sample
    from huntlab.workspace import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("sample") / "ws")
    install_jobs(ws)
    load_sample(ws, 30_000)
    return ws


@pytest.fixture()
def demo_ws(tmp_path: Path):
    """A private demo workspace (tests may write to it)."""
    from huntlab.demo import install_jobs, load_sample
    from huntlab.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    install_jobs(ws)
    load_sample(ws, 20_000)
    return ws
