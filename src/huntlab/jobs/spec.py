"""Job definitions: `.sql` files with a header, and `.py` files with a decorated function."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from huntlab.errors import JobError

JobKind = Literal["sql", "python", "mapreduce"]
MODES = ("overwrite", "append", "merge")
_HEADER = re.compile(r"^\s*--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")


@dataclass
class JobSpec:
    """Everything the runner needs to know about one job."""

    name: str
    kind: JobKind
    path: Path | None = None
    output: str | None = None
    mode: str = "overwrite"
    keys: list[str] = field(default_factory=list)
    partition_by: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    description: str = ""
    sql: str | None = None
    func: Callable[..., Any] | None = None
    # A public output leaves the team: groups with fewer than k distinct clients are suppressed.
    public: bool = False
    clients_column: str = "clients"

    def check(self) -> JobSpec:
        if self.mode not in MODES:
            raise JobError(
                f"job '{self.name}': unknown write mode '{self.mode}'",
                f"Use one of: {', '.join(MODES)}",
            )
        if self.mode == "merge" and not self.keys:
            raise JobError(f"job '{self.name}': mode merge needs key columns", "Add `key: col`")
        return self


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse_params(value: str) -> dict[str, str]:
    params = {}
    for item in _split_list(value):
        key, sep, default = item.partition("=")
        params[key.strip()] = default.strip() if sep else ""
    return params


def parse_sql_job(text: str, path: Path | None = None) -> JobSpec:
    """Read the `-- key: value` header lines at the top of a SQL job, then its statement."""
    header: dict[str, str] = {}
    body: list[str] = []
    in_header = True
    for line in text.splitlines():
        m = _HEADER.match(line) if in_header else None
        if m:
            header[m.group(1).lower()] = m.group(2)
            continue
        if in_header and (not line.strip() or line.strip().startswith("--")):
            continue
        in_header = False
        body.append(line)
    sql = "\n".join(body).strip().rstrip(";").strip()
    name = header.pop("name", path.stem if path else "adhoc")
    if not sql:
        raise JobError(f"job '{name}' has no SQL statement", "Write a SELECT after the header")
    known = {
        "output",
        "mode",
        "key",
        "keys",
        "params",
        "partition_by",
        "description",
        "inputs",
        "public",
        "clients_column",
    }
    unknown = set(header) - known
    if unknown:
        raise JobError(
            f"job '{name}': unknown header key(s) {sorted(unknown)}",
            f"Known keys: name, {', '.join(sorted(known))}",
        )
    return JobSpec(
        name=name,
        kind="sql",
        path=path,
        output=header.get("output") or None,
        mode=header.get("mode", "overwrite").lower(),
        keys=_split_list(header.get("key", header.get("keys", ""))),
        partition_by=_split_list(header.get("partition_by", "")),
        params=_parse_params(header.get("params", "")),
        inputs=_split_list(header.get("inputs", "")),
        description=header.get("description", ""),
        sql=sql,
        public=_flag(header.get("public", "false"), name),
        clients_column=header.get("clients_column", "clients"),
    ).check()


def _flag(value: str, job_name: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0", ""):
        return False
    raise JobError(
        f"job '{job_name}': 'public: {value}' is not true or false", "Write true or false"
    )


def job(
    output: str | None = None,
    *,
    name: str | None = None,
    mode: str = "overwrite",
    keys: list[str] | None = None,
    partition_by: list[str] | None = None,
    params: dict[str, str] | None = None,
    inputs: list[str] | None = None,
    description: str = "",
    kind: JobKind = "python",
    public: bool = False,
    clients_column: str = "clients",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as a huntlab job; its parameters name the input datasets."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        arg_names = [p for p in inspect.signature(fn).parameters if p != "params"]
        fn.__huntlab_job__ = JobSpec(  # type: ignore[attr-defined]
            name=name or fn.__name__,
            kind=kind,
            output=output,
            mode=mode,
            keys=list(keys or []),
            partition_by=list(partition_by or []),
            params={k: str(v) for k, v in (params or {}).items()},
            inputs=list(inputs or arg_names),
            description=description or (inspect.getdoc(fn) or "").split("\n")[0],
            func=fn,
            public=public,
            clients_column=clients_column,
        ).check()
        return fn

    return wrap


def mapreduce(output: str | None = None, **kwargs: Any) -> Callable[..., Any]:
    """Mark a function as a map-reduce job: it receives `Records` and returns Records or Arrow."""
    return job(output, kind="mapreduce", **kwargs)


def load_python_jobs(path: Path) -> list[JobSpec]:
    """Import a job file and collect its decorated functions (imported afresh every time)."""
    mod_name = f"huntlab_job_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise JobError(f"cannot import job file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise JobError(
            f"{path.name}:{exc.lineno}: syntax error: {exc.msg}", "Fix the Python job file"
        ) from exc
    except ImportError as exc:
        raise JobError(
            f"{path.name}: import failed: {exc}",
            "Install the missing package, or run on an engine that provides it",
        ) from exc
    finally:
        sys.modules.pop(mod_name, None)
    found = []
    for obj in vars(module).values():
        js = getattr(obj, "__huntlab_job__", None)
        if isinstance(js, JobSpec):
            js.path = path
            found.append(js)
    if not found:
        raise JobError(f"{path.name} defines no job", "Decorate a function with @huntlab.job(...)")
    return found
