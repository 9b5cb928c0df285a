"""The huntlab exception hierarchy: one root, a few meaningful kinds, each with a fix to suggest."""

from __future__ import annotations


class HuntlabError(Exception):
    """Root of every error huntlab raises on purpose; the CLI prints it as one line."""

    transient = False

    def __init__(self, message: str, hint: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.transient = transient or type(self).transient

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}" if self.hint else self.message


class ConfigError(HuntlabError):
    """The workspace or its huntlab.toml is missing or invalid."""


class InputError(HuntlabError):
    """User input (a dataset name, a parameter, a file) is invalid."""


class DatasetNotFound(InputError):
    """A dataset name that the catalog does not know."""


class ConnectorError(HuntlabError):
    """A connector could not read or write its source."""


class EngineError(HuntlabError):
    """The engine failed to run a statement."""


class UnsupportedOnEngine(EngineError):
    """A construct the selected engine cannot run; the message names the engine that can."""

    def __init__(self, construct: str, engine: str, alternative: str = "spark") -> None:
        super().__init__(
            f"{construct} is not supported on the {engine} engine",
            f"Run this job with --engine {alternative}, or rewrite it without {construct}",
        )
        self.construct = construct


class SqlError(EngineError):
    """A SQL statement failed to parse or run; carries the position when known."""


class JobError(HuntlabError):
    """A job definition is invalid or the job failed."""


class MissingDependency(HuntlabError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"the optional dependency '{module}' is not installed",
            f"Install it with: pip install 'huntlab[{extra}]'",
        )
