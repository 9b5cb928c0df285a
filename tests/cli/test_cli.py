"""The command line, run as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def hl(
    *args: str, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("HUNTLAB_WORKSPACE", None)
    return subprocess.run(
        [sys.executable, "-m", "huntlab.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_help_lists_commands() -> None:
    r = hl("--help")
    assert r.returncode == 0
    for cmd in ("init", "datasets", "run", "runs", "sql", "shell", "sample", "demo"):
        assert cmd in r.stdout


def test_help_is_fast() -> None:
    code = (
        "import time,sys; t=time.perf_counter(); import huntlab.cli.main; "
        "print(time.perf_counter()-t); print(sorted(m for m in sys.modules if m.split('.')[0] "
        "in ('duckdb','pyarrow','sqlalchemy','sqlframe','pandas','deltalake')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[1] == "[]", "heavy modules must be imported lazily"


def test_error_outside_workspace_is_one_line(tmp_path: Path) -> None:
    r = hl("datasets", "list", cwd=tmp_path)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "huntlab init" in lines[0]
    r = hl("--debug", "datasets", "list", cwd=tmp_path)
    assert "Traceback" in r.stderr


def test_workflow(tmp_path: Path) -> None:
    assert hl("init", "ws", cwd=tmp_path).returncode == 0
    ws = tmp_path / "ws"
    data = tmp_path / "hits.csv"
    data.write_text("family,hits\nEmotet,3\nQakbot,5\nEmotet,4\n")
    r = hl("datasets", "add", "hits", str(data), cwd=ws)
    assert r.returncode == 0, r.stderr
    r = hl("datasets", "list", cwd=ws)
    assert "hits" in r.stdout and "csv" in r.stdout
    r = hl("datasets", "show", "hits", cwd=ws)
    assert "family" in r.stdout and "BIGINT" in r.stdout.upper() or "int64" in r.stdout
    assert "malformed rows skipped: 0" in r.stdout
    r = hl("datasets", "preview", "hits", "-n", "2", cwd=ws)
    assert "Emotet" in r.stdout and "2 of" not in r.stdout
    r = hl(
        "sql", "SELECT family, sum(hits) AS total FROM hits GROUP BY family ORDER BY family", cwd=ws
    )
    assert r.returncode == 0 and "Emotet" in r.stdout and "7" in r.stdout
    out = tmp_path / "o.jsonl"
    r = hl(
        "sql",
        "SELECT family, sum(hits) AS total FROM hits GROUP BY family",
        "--out",
        str(out),
        cwd=ws,
    )
    rows = sorted((json.loads(x) for x in out.read_text().splitlines()), key=lambda r: r["family"])
    assert rows == [{"family": "Emotet", "total": 7}, {"family": "Qakbot", "total": 5}]
    (ws / "jobs" / "totals.sql").write_text(
        "-- output: totals\n-- params: min=0\nSELECT family, sum(hits) AS total FROM hits "
        "GROUP BY family HAVING sum(hits) > :min"
    )
    r = hl("run", "totals", "--param", "min=6", cwd=ws)
    assert r.returncode == 0, r.stderr
    assert "Emotet" in r.stdout and "Qakbot" not in r.stdout
    r = hl("runs", cwd=ws)
    assert "totals" in r.stdout and "succeeded" in r.stdout
    r = hl("datasets", "history", "totals", cwd=ws)
    assert "WRITE" in r.stdout
    r = hl("jobs", cwd=ws)
    assert "totals" in r.stdout


def test_sql_errors_name_position_and_statement(tmp_path: Path) -> None:
    hl("init", "ws", cwd=tmp_path)
    r = hl("sql", "SELECT family FORM hits WHERE", cwd=tmp_path / "ws")
    assert r.returncode == 1
    assert "line" in r.stderr.lower() and "Traceback" not in r.stderr
    r = hl("sql", "SELECT * FROM nope", cwd=tmp_path / "ws")
    assert r.returncode == 1 and "not found" in r.stderr


def test_bad_param_syntax(tmp_path: Path) -> None:
    hl("init", "ws", cwd=tmp_path)
    r = hl("sql", "SELECT 1", "--param", "novalue", cwd=tmp_path / "ws")
    assert r.returncode == 1 and "NAME=VALUE" in r.stderr


def test_shell_batch_mode(sample_ws) -> None:
    script = "\\d\nSELECT count(*) AS n\nFROM events;\nSELECT nosuch FROM events;\n\\q\n"
    r = hl("shell", cwd=sample_ws.root, stdin=script)
    assert r.returncode == 0, r.stderr
    assert "events" in r.stdout and "30,000" in r.stdout and "error" in r.stdout


def test_shell_python_mode(sample_ws) -> None:
    script = "print(spark.table('events').where(F.col('event_type') == 'crash').count() > 0)\n"
    r = hl("shell", "--python", cwd=sample_ws.root, stdin=script)
    assert r.returncode == 0, r.stderr
    assert "True" in r.stdout


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """The quick start's main command, in a temporary folder: findings printed, runs recorded."""
    r = hl("demo", "dws", "--events", "60000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for question in (
        "Prevalence and spread",
        "First and last seen",
        "rising fastest",
        "Top blocked domains",
        "Crash rate by product version",
        "map-reduce",
        "client upstream",
        "Published (k-anonymous",
    ):
        assert question in r.stdout
    r = hl("runs", cwd=tmp_path / "dws")
    assert r.stdout.count("succeeded") == 7
    r = hl("upstream", "status", cwd=tmp_path / "dws")
    assert r.returncode == 0 and "0 rows pending" in r.stdout, r.stdout + r.stderr
