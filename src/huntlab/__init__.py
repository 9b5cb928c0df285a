"""huntlab: hunt malicious content in security telemetry.

The public surface: `job` and `mapreduce` decorators for job files, `Workspace` to open a
workspace from Python, `run_job`, and the `HuntlabError` hierarchy. Imports are lazy so the CLI
starts fast.
"""

from __future__ import annotations

from typing import Any

from huntlab.errors import HuntlabError
from huntlab.jobs.spec import job, mapreduce

__version__ = "0.1.0"
__all__ = ["HuntlabError", "Records", "Workspace", "__version__", "job", "mapreduce", "run_job"]


def __getattr__(name: str) -> Any:
    if name == "Workspace":
        from huntlab.workspace import Workspace

        return Workspace
    if name == "run_job":
        from huntlab.jobs.runner import run_job

        return run_job
    if name == "Records":
        from huntlab.jobs.mapreduce import Records

        return Records
    raise AttributeError(f"module 'huntlab' has no attribute {name!r}")
