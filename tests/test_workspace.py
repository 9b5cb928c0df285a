"""Workspaces: creation, discovery, configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from huntlab.errors import ConfigError, InputError
from huntlab.workspace import Workspace, check_name


def test_init_creates_layout(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    for sub in ("jobs", "data", ".huntlab", "huntlab.toml"):
        assert (ws.root / sub).exists()
    assert (ws.root / ".huntlab" / "metadata.db").exists()
    assert ws.config.engine.type == "duckdb"


def test_find_walks_up(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    deep = ws.root / "jobs" / "a" / "b"
    deep.mkdir(parents=True)
    assert Workspace.find(deep).root == ws.root


def test_find_outside_a_workspace_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="huntlab init"):
        Workspace.find(tmp_path)


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    (ws.root / "huntlab.toml").write_text('[engine]\ntype = "oracle"\n')
    with pytest.raises(ConfigError, match="engine.type"):
        Workspace(ws.root)
    (ws.root / "huntlab.toml").write_text("[engine\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Workspace(ws.root)
    (ws.root / "huntlab.toml").write_text("[engine]\nthreds = 2\n")
    with pytest.raises(ConfigError, match="threds"):
        Workspace(ws.root)


@pytest.mark.parametrize("name", ["events", "_x1", "Hits_2026"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", 'x"; DROP TABLE y; --', "ä"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InputError):
        check_name(name)
