"""Streaming jobs: the batch job forms plus a window clause (`-- window: 1 hour`, ...).

A SQL streaming job runs over each micro-batch as the view `events`, which carries an extra
column `window_start` (one row per window an event falls in). It groups by `window_start` and
its key columns and returns additive columns (counts, sums): the processor merges them into the
open windows. A Python streaming job is a function decorated with `@stream_job(...)` that takes
that Arrow table and returns the same shape. `metric` (a SQL expression over the output columns)
is what the per-key detectors watch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huntlab.errors import JobError

_HEADER = re.compile(r"^\s*--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")
_UNITS = {
    "": 1,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
KNOWN = {
    "name",
    "output",
    "window",
    "slide",
    "watermark",
    "key",
    "keys",
    "metric",
    "fill",
    "detector",
    "threshold",
    "support",
    "cold_start",
    "warmup",
    "noise",
    "description",
}
STREAM_DIR = "stream"


def parse_duration(text: str, what: str = "duration", *, zero: bool = False) -> int:
    """'10 minutes', '1h', '90 s' -> seconds (0 only where `zero` allows it)."""
    m = _DURATION.match(text.lower())
    if not m or m.group(2) not in _UNITS or int(m.group(1)) < (0 if zero else 1):
        raise JobError(
            f"bad {what} {text!r}", "Write a positive number and a unit: 30 s, 10 minutes, 1 hour"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class StreamJob:
    """A streaming job: what to aggregate, over which windows, per which keys, watched how."""

    name: str
    window_s: int
    slide_s: int
    watermark_s: int = 600
    keys: list[str] = field(default_factory=list)
    output: str = ""
    metric: str | None = None
    fill: float | None = 0.0
    detector: str = "robust"
    threshold: float = 0.5
    support: str | None = None  # SQL condition a window must meet to alert (e.g. events >= 50)
    poisson: bool = False  # `noise: poisson`: the metric is a count
    warmup: int = 30  # windows a key must have seen before its own detector may alert
    cold_start: str = "ignore"  # a key without history: 'ignore' it, or compare to 'population'
    description: str = ""
    sql: str | None = None
    func: Callable[..., Any] | None = None
    path: Path | None = None

    def check(self) -> StreamJob:
        if self.slide_s > self.window_s or self.window_s % self.slide_s:
            raise JobError(
                f"stream job '{self.name}': the window ({self.window_s}s) must be a whole "
                f"multiple of the slide ({self.slide_s}s)",
                "Pick a slide that divides the window, or leave it out for tumbling windows",
            )
        if not 0 < self.threshold < 1:
            raise JobError(f"stream job '{self.name}': threshold must be in (0, 1)")
        self.output = self.output or self.name
        return self

    @property
    def windows_per_event(self) -> int:
        return self.window_s // self.slide_s


def _cold_start(value: str, name: str) -> str:
    v = value.strip().lower()
    if v not in ("ignore", "population"):
        raise JobError(f"stream job '{name}': cold_start must be ignore or population")
    return v


def _settings(header: dict[str, str], name: str) -> dict[str, Any]:
    if "window" not in header:
        raise JobError(
            f"stream job '{name}' has no window", "Add `-- window: 1 hour` to its header"
        )
    window = parse_duration(header["window"], "window")
    fill = header.get("fill", "0").strip().lower()
    return {
        "window_s": window,
        "slide_s": parse_duration(header["slide"], "slide") if "slide" in header else window,
        "watermark_s": parse_duration(
            header.get("watermark", "10 minutes"), "watermark", zero=True
        ),
        "keys": [
            k.strip() for k in header.get("key", header.get("keys", "")).split(",") if k.strip()
        ],
        "output": header.get("output", ""),
        "metric": header.get("metric") or None,
        "fill": None if fill in ("none", "null", "") else float(fill),
        "detector": header.get("detector", "robust"),
        "threshold": float(header.get("threshold", "0.5")),
        "support": header.get("support") or None,
        "warmup": int(header.get("warmup", "30")),
        "poisson": header.get("noise", "").strip().lower() == "poisson",
        "cold_start": _cold_start(header.get("cold_start", "ignore"), name),
        "description": header.get("description", ""),
    }


def parse_stream_sql(text: str, path: Path | None = None) -> StreamJob:
    """A SQL streaming job: `-- key: value` header lines, then one SELECT."""
    header: dict[str, str] = {}
    body: list[str] = []
    for line in text.splitlines():
        m = _HEADER.match(line) if not body else None
        if m:
            header[m.group(1).lower()] = m.group(2)
        elif body or (line.strip() and not line.strip().startswith("--")):
            body.append(line)
    name = header.pop("name", path.stem if path else "adhoc")
    unknown = set(header) - KNOWN
    if unknown:
        raise JobError(
            f"stream job '{name}': unknown header key(s) {sorted(unknown)}",
            f"Known keys: {', '.join(sorted(KNOWN))}",
        )
    sql = "\n".join(body).strip().rstrip(";").strip()
    if not sql:
        raise JobError(f"stream job '{name}' has no SQL statement", "Write a SELECT")
    return StreamJob(name=name, sql=sql, path=path, **_settings(header, name)).check()


def stream_job(**header: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function (Arrow micro-batch -> Arrow partial aggregates) as a streaming job."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = header.get("name", fn.__name__)
        settings = _settings({k.lower(): str(v) for k, v in header.items()}, name)
        fn.__huntlab_stream_job__ = StreamJob(name=name, func=fn, **settings).check()  # type: ignore[attr-defined]
        return fn

    return wrap


def _load_python(path: Path) -> StreamJob:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"huntlab_stream_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise JobError(f"cannot import stream job file {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (SyntaxError, ImportError) as exc:
        raise JobError(f"{path.name}: cannot load: {exc}", "Fix the Python job file") from exc
    for obj in vars(module).values():
        job = getattr(obj, "__huntlab_stream_job__", None)
        if isinstance(job, StreamJob):
            job.path = path
            return job
    raise JobError(f"{path.name} defines no stream job", "Decorate a function with @stream_job")


def find_stream_job(jobs_dir: Path, name: str) -> StreamJob:
    """A streaming job by name (jobs/stream/NAME.sql or .py) or by file path."""
    cands = [Path(name)] if Path(name).suffix in (".sql", ".py") else []
    folder = jobs_dir / STREAM_DIR
    cands += [folder / f"{name}.sql", folder / f"{name}.py"]
    for p in cands:
        if p.is_file():
            if p.suffix == ".sql":
                return parse_stream_sql(p.read_text(encoding="utf-8"), p)
            return _load_python(p)
    known = sorted(p.stem for p in folder.glob("*.*")) if folder.is_dir() else []
    raise JobError(
        f"stream job '{name}' not found in {folder}; known: {', '.join(known) or '(none)'}",
        "Pass the path of a .sql or .py file, or add it under jobs/stream/",
    )
