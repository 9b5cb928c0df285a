"""Find jobs in a workspace without importing them (listing must be fast and side-effect free)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from huntlab.errors import JobError
from huntlab.jobs.spec import parse_sql_job


@dataclass(frozen=True)
class JobRef:
    """Where a job is defined."""

    name: str
    kind: str
    path: Path
    output: str | None = None
    description: str = ""


def _python_refs(path: Path) -> list[JobRef]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise JobError(f"{path.name}:{exc.lineno}: syntax error: {exc.msg}") from exc
    refs = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            call = dec if isinstance(dec, ast.Call) else None
            target = call.func if call else dec
            dname = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if dname not in ("job", "mapreduce"):
                continue
            kw = {k.arg: k.value for k in (call.keywords if call else [])}
            name = kw.get("name")
            output = kw.get("output") or (call.args[0] if call and call.args else None)
            refs.append(
                JobRef(
                    name=name.value if isinstance(name, ast.Constant) else node.name,
                    kind="mapreduce" if dname == "mapreduce" else "python",
                    path=path,
                    output=output.value if isinstance(output, ast.Constant) else None,
                    description=(ast.get_docstring(node) or "").split("\n")[0],
                )
            )
    return refs


def list_jobs(jobs_dir: Path) -> list[JobRef]:
    """Every job defined under jobs/, sorted by name."""
    refs: list[JobRef] = []
    for path in sorted(jobs_dir.glob("*.sql")):
        spec = parse_sql_job(path.read_text(encoding="utf-8"), path)
        refs.append(JobRef(spec.name, "sql", path, spec.output, spec.description))
    for path in sorted(jobs_dir.glob("*.py")):
        if not path.name.startswith("_"):
            refs.extend(_python_refs(path))
    return sorted(refs, key=lambda r: r.name)


def find_job(jobs_dir: Path, name: str) -> JobRef:
    """The job called `name` (or defined in the file `name`)."""
    candidate = Path(name)
    if candidate.suffix in (".sql", ".py") and candidate.is_file():
        if candidate.suffix == ".sql":
            spec = parse_sql_job(candidate.read_text(encoding="utf-8"), candidate)
            return JobRef(spec.name, "sql", candidate, spec.output)
        refs = _python_refs(candidate)
        if len(refs) == 1:
            return refs[0]
    jobs = list_jobs(jobs_dir) if jobs_dir.is_dir() else []
    for ref in jobs:
        if ref.name == name or ref.path.stem == name:
            return ref
    raise JobError(
        f"job '{name}' not found in {jobs_dir}; "
        f"known: {', '.join(j.name for j in jobs) or '(none)'}",
        "Check the name with `huntlab jobs`, or pass the path of a .sql or .py file",
    )
