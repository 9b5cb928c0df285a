"""The embedded engine: DuckDB in-process, spilling to disk instead of running out of memory."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.connectors.base import connector_for
from huntlab.engines.base import Engine
from huntlab.errors import DatasetNotFound, EngineError, SqlError

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


class DuckDBEngine(Engine):
    """Spark SQL transpiled to DuckDB; the PySpark API through SQLFrame."""

    name = "duckdb"

    def __init__(self, workspace: Workspace) -> None:
        import duckdb

        from huntlab.engines.transpile import install_macros

        super().__init__(workspace)
        cfg = workspace.config.engine
        tmp = cfg.temp_directory or str(workspace.meta_dir / "tmp")
        self.con = duckdb.connect(config={"temp_directory": tmp})
        self.con.execute("SET TimeZone='UTC'")
        if cfg.memory_limit:
            self.con.execute("SET memory_limit=$1", [cfg.memory_limit])
        if cfg.threads:
            self.con.execute("SET threads=$1", [cfg.threads])
        install_macros(self.con)
        self._registered: dict[str, str | None] = {}
        self._session: Any = None

    def register(self, names: list[str]) -> dict[str, str | None]:
        store = self.workspace.store
        for name in names:
            if name in self._registered:
                continue
            conn = connector_for(store.get_dataset(name))
            conn.register(self.con, name)
            self._registered[name] = conn.version()
        return {n: self._registered[n] for n in names}

    def register_all(self) -> None:
        """Register every catalog dataset that can be read now (used by the shell)."""
        from huntlab.errors import HuntlabError

        for name in self.workspace.store.dataset_names():
            try:
                self.register([name])
            except HuntlabError:
                continue

    def sql(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        from huntlab.engines.sqlrefs import referenced_tables
        from huntlab.engines.transpile import to_duckdb

        known = set(self.workspace.store.dataset_names())
        self.register([t for t in referenced_tables(query) if t in known])
        return self.execute_duckdb(to_duckdb(query), params, original=query)

    def execute_duckdb(
        self, duck_sql: str, params: dict[str, Any] | None = None, original: str | None = None
    ) -> pa.Table:
        """Run DuckDB SQL, turning DuckDB's errors into one-line huntlab errors."""
        import duckdb

        try:
            return self.con.execute(duck_sql, params or None).to_arrow_table()
        except duckdb.CatalogException as exc:
            m = _MISSING_TABLE.search(str(exc))
            if m:
                known = self.workspace.store.dataset_names()
                raise DatasetNotFound(
                    f"dataset {m.group(1)} not found; known: {', '.join(known) or '(none)'}",
                    "Create it with `huntlab datasets add` or check the name",
                ) from exc
            raise SqlError(
                _first_line(exc), f"in statement: {_short(original or duck_sql)}"
            ) from exc
        except duckdb.OutOfMemoryException as exc:
            raise EngineError(
                f"DuckDB ran out of memory: {_first_line(exc)}",
                "Raise [engine] memory_limit in huntlab.toml or free disk for spilling",
            ) from exc
        except duckdb.InvalidInputException as exc:
            if "Required parameter" in str(exc) or "parameter" in str(exc).lower():
                raise SqlError(_first_line(exc), "Pass it with --param NAME=VALUE") from exc
            raise SqlError(
                _first_line(exc), f"in statement: {_short(original or duck_sql)}"
            ) from exc
        except duckdb.Error as exc:
            raise SqlError(
                _first_line(exc), f"in statement: {_short(original or duck_sql)}"
            ) from exc

    # -- PySpark API ----------------------------------------------------------------------
    @property
    def session(self) -> Any:
        if self._session is None:
            from huntlab.engines.pyspark_api import open_session

            self._session = open_session(self.con)
        return self._session

    def dataframe(self, name: str) -> Any:
        self.register([name])
        return self.session.table(name)

    def to_arrow(self, df: Any) -> pa.Table:
        from huntlab.engines.pyspark_api import to_arrow

        return to_arrow(df)

    def python_context(self) -> Any:
        from huntlab.engines.pyspark_api import activated

        return activated(self.con)

    def close(self) -> None:
        self.con.close()


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")[:2]).strip()


def _short(sql: str, limit: int = 160) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."
