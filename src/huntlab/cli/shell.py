"""The interactive shell: Spark SQL with completion and history, and a Python mode with `spark`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huntlab.engines.duckdb import DuckDBEngine
    from huntlab.workspace import Workspace

BANNER = (
    "huntlab shell: Spark SQL over the workspace's datasets. End a statement with ';'.\n"
    "  \\d  list datasets    \\d NAME  columns    \\py  Python mode    \\q  quit"
)
KEYWORDS = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "INNER",
    "ON",
    "AS",
    "WITH",
    "UNION",
    "ALL",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "LIKE",
    "RLIKE",
    "LATERAL",
    "VIEW",
    "EXPLODE",
    "OVER",
    "PARTITION",
    "CAST",
    "DESC",
    "ASC",
]


def _columns(engine: DuckDBEngine) -> dict[str, list[str]]:
    engine.register_all()
    out = {}
    for name in engine.workspace.store.dataset_names():
        try:
            out[name] = engine.con.table(name).columns
        except Exception:  # noqa: BLE001 - an unreadable dataset simply has no completions
            out[name] = []
    return out


def _handle(line: str, engine: DuckDBEngine, out: Any) -> str | None:
    """Run one statement or backslash command; returns 'py' or 'quit' to switch mode."""
    from huntlab.cli.render import arrow_table
    from huntlab.errors import HuntlabError

    cmd = line.strip().rstrip(";").strip()
    if not cmd:
        return None
    if cmd in ("\\q", "quit", "exit"):
        return "quit"
    if cmd == "\\py":
        return "py"
    if cmd.startswith("\\d"):
        arg = cmd[2:].strip()
        cols = _columns(engine)
        if arg:
            out.print(f"{arg}: {', '.join(cols.get(arg, [])) or '(unknown dataset)'}")
        else:
            for name, c in cols.items():
                out.print(f"[bold]{name}[/] ({len(c)} columns)")
        return None
    try:
        out.print(arrow_table(engine.sql(cmd), 50))
    except HuntlabError as exc:
        out.print(f"[bold red]error:[/] {exc}", highlight=False)
    return None


def _python(engine: DuckDBEngine, interactive: bool) -> None:
    """A Python console with the workspace loaded and a PySpark-style `spark` session."""
    import code

    from huntlab.engines.pyspark_api import activated

    engine.register_all()
    with activated(engine.con):
        from pyspark.sql import functions as F

        ns = {"spark": engine.session, "F": F, "ws": engine.workspace, "engine": engine}
        banner = "Python mode: `spark`, `F` (functions), `ws` (workspace). Ctrl-D to return."
        console = code.InteractiveConsole(ns)
        if interactive:
            console.interact(banner=banner, exitmsg="back to SQL")
        else:
            for line in sys.stdin:
                console.push(line.rstrip("\n"))


def run_shell(ws: Workspace, start_python: bool = False) -> None:
    """Run the shell; reads statements from stdin when it is not a terminal (scripts, tests)."""
    from rich.console import Console

    out = Console()
    engine = ws.engine("duckdb")
    try:
        if start_python:
            _python(engine, sys.stdin.isatty())
            return
        if not sys.stdin.isatty():
            _batch(engine, out)
            return
        _interactive(ws, engine, out)
    finally:
        engine.close()


def _batch(engine: DuckDBEngine, out: Any) -> None:
    buf: list[str] = []
    for line in sys.stdin:
        if not buf and line.strip().startswith("\\"):
            if _handle(line, engine, out) == "quit":
                return
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            if _handle("".join(buf), engine, out) == "quit":
                return
            buf = []
    if "".join(buf).strip():
        _handle("".join(buf), engine, out)


def _interactive(ws: Workspace, engine: DuckDBEngine, out: Any) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory

    cols = _columns(engine)
    words = sorted({*KEYWORDS, *cols, *(c for cs in cols.values() for c in cs)})
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(ws.meta_dir / "shell_history")),
        completer=WordCompleter(words, ignore_case=True),
        multiline=False,
    )
    out.print(BANNER)
    buf: list[str] = []
    while True:
        try:
            line = session.prompt("huntlab> " if not buf else "     ...> ")
        except KeyboardInterrupt:
            buf = []
            continue
        except EOFError:
            return
        if not buf and line.strip().startswith("\\"):
            action = _handle(line, engine, out)
        else:
            buf.append(line)
            if not line.rstrip().endswith(";"):
                continue
            action = _handle("\n".join(buf), engine, out)
            buf = []
        if action == "quit":
            return
        if action == "py":
            _python(engine, True)
