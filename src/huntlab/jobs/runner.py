"""Run a job: resolve inputs, execute on an engine, normalise, write atomically, record the run."""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from huntlab.connectors.base import connector_for
from huntlab.errors import HuntlabError, JobError
from huntlab.jobs import quarantine
from huntlab.jobs.discover import find_job
from huntlab.jobs.normalize import normalize_table
from huntlab.jobs.spec import JobSpec, load_python_jobs, parse_sql_job
from huntlab.workspace import Workspace

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class RunResult:
    """What a finished run produced."""

    run_id: int
    job: str
    engine: str
    output: str | None
    rows_out: int
    seconds: float
    table: pa.Table
    inputs: dict[str, str | None] = field(default_factory=dict)
    output_version: str | None = None
    suppressed_groups: int | None = None  # public outputs: groups under k distinct clients
    quarantined: list[str] = field(default_factory=list)  # one line per input with bad lines


def coerce_param(value: str) -> Any:
    """Parameters arrive as text; bind numbers and booleans with their SQL types."""
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def resolve_params(spec: JobSpec, given: dict[str, str]) -> dict[str, Any]:
    """Defaults from the job header, overridden by --param; unknown or missing ones are errors."""
    unknown = set(given) - set(spec.params)
    if unknown and spec.kind == "sql":
        raise JobError(
            f"job '{spec.name}' has no parameter(s) {sorted(unknown)}",
            f"Its parameters: {', '.join(spec.params) or '(none)'}",
        )
    merged = {**spec.params, **given}
    if spec.kind == "sql":
        from huntlab.engines.transpile import parameter_names

        needed = parameter_names(spec.sql or "")
        missing = sorted(n for n in needed if merged.get(n, "") == "")
        if missing:
            raise JobError(
                f"job '{spec.name}' needs parameter(s) {missing}",
                "Pass them with --param NAME=VALUE or give defaults in the `params:` header",
            )
        return {k: coerce_param(v) for k, v in merged.items() if k in needed}
    return {k: coerce_param(v) for k, v in merged.items()}


def load_spec(ws: Workspace, name: str, engine: Any) -> JobSpec:
    """The full JobSpec of a job (Python files are imported under the engine's context)."""
    ref = find_job(ws.jobs_dir, name)
    if ref.kind == "sql":
        return parse_sql_job(ref.path.read_text(encoding="utf-8"), ref.path)
    for spec in load_python_jobs(ref.path):
        if spec.name == ref.name:
            return spec
    raise JobError(f"job '{name}' not found in {ref.path.name}")


def _execute(spec: JobSpec, engine: Any, params: dict[str, Any]) -> tuple[pa.Table, dict]:
    if spec.kind == "sql":
        from huntlab.engines.sqlrefs import referenced_tables

        inputs = engine.register(
            [t for t in referenced_tables(spec.sql or "") if engine.workspace.store.has_dataset(t)]
        )
        return engine.sql(spec.sql or "", params), inputs
    fn = spec.func
    assert fn is not None
    inputs = engine.register(spec.inputs)
    takes_params = "params" in inspect.signature(fn).parameters
    if spec.kind == "mapreduce":
        args = {n: engine.records(n) for n in spec.inputs}
    else:
        args = {n: engine.dataframe(n) for n in spec.inputs}
    try:
        result = fn(**args, **({"params": params} if takes_params else {}))
    except HuntlabError:
        raise
    except Exception as exc:
        raise JobError(
            f"job '{spec.name}' raised {exc.__class__.__name__}: {exc}",
            "Run with --debug for the traceback",
        ) from exc
    return _as_arrow(result, engine, spec), inputs


def _as_arrow(result: Any, engine: Any, spec: JobSpec) -> pa.Table:
    if isinstance(result, pa.Table):
        return result
    if isinstance(result, pa.RecordBatchReader):
        return result.read_all()
    if spec.kind == "mapreduce" and hasattr(result, "to_arrow"):
        return result.to_arrow()
    if result is None:
        raise JobError(f"job '{spec.name}' returned None", "Return a DataFrame or an Arrow table")
    return engine.to_arrow(result)


def run_job(
    ws: Workspace,
    name: str,
    params: dict[str, str] | None = None,
    engine_name: str | None = None,
    *,
    write: bool = True,
    status: Callable[[str], None] | None = None,
) -> RunResult:
    """Run one job end to end and record it; a failure leaves every output as it was."""
    say = status or (lambda _msg: None)
    engine = ws.engine(engine_name)
    started = time.perf_counter()
    run_id: int | None = None
    try:
        # SQLFrame is activated only for Python jobs: SQL jobs need neither it nor pandas.
        ref = find_job(ws.jobs_dir, name)
        context = engine.python_context() if ref.kind != "sql" else nullcontext()
        with context:
            spec = load_spec(ws, name, engine)
            bound = resolve_params(spec, params or {})
            run_id = ws.store.start_run(
                spec.name, engine.name, {k: str(v) for k, v in bound.items()}
            )
            say(f"running {spec.name} ({spec.kind}) on {engine.name}")
            table, inputs = _execute(spec, engine, bound)
            found = quarantine.collect(engine, ws, list(inputs))
        table = normalize_table(table)
        suppressed = None
        if spec.public:
            from huntlab.jobs.publish import suppress_small_groups

            k = ws.config.publish.k_anonymity
            table, suppressed = suppress_small_groups(table, k, spec.clients_column, spec.name)
            say(f"public output: suppressed {suppressed:,} group(s) with fewer than {k} clients")
        version = None
        outputs: dict[str, str | None] = {}
        if write and found:  # committed before the output: never lost if the job commits
            outputs[quarantine.QUARANTINE] = quarantine.write(ws, run_id, engine.name, found)
        for line in quarantine.messages(found, write):
            say(line)
        if write and spec.output:
            say(f"writing {table.num_rows:,} rows to {spec.output} ({spec.mode})")
            entry = ws.ensure_managed(spec.output, spec.partition_by)
            conn = connector_for(entry)
            if not conn.supports_write:
                raise JobError(
                    f"output '{spec.output}' is a read-only {entry.format} dataset",
                    "Write to a managed dataset (a new name creates one)",
                )
            version = conn.write(table, spec.mode, spec.keys, run_id=run_id)  # type: ignore[call-arg]
            ws.store.touch_dataset(spec.output)
            outputs[spec.output] = version
        rows_in = _count_inputs(ws, list(inputs))
        ws.store.finish_run(
            run_id,
            status="succeeded",
            rows_in=rows_in,
            rows_out=table.num_rows,
            inputs=inputs,
            outputs=outputs,
        )
        return RunResult(
            run_id,
            spec.name,
            engine.name,
            spec.output,
            table.num_rows,
            time.perf_counter() - started,
            table,
            inputs,
            version,
            suppressed,
            quarantine.messages(found, write),
        )
    except BaseException as exc:
        if run_id is not None:
            ws.store.finish_run(run_id, status="failed", error=str(exc) or exc.__class__.__name__)
        raise
    finally:
        engine.close()


def _count_inputs(ws: Workspace, names: list[str]) -> int | None:
    """Rows read, where the source can tell cheaply (table metadata); None otherwise."""
    total = 0
    for n in names:
        c = connector_for(ws.store.get_dataset(n))
        rows = c.count_rows()
        if rows is None:
            return None
        total += rows
    return total


def job_path(ws: Workspace, name: str) -> Path:
    return find_job(ws.jobs_dir, name).path
