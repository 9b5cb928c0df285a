"""Publishing with k-anonymity: a public output keeps only groups of at least k distinct clients."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from huntlab.errors import JobError


def suppress_small_groups(
    table: pa.Table, k: int, clients_column: str = "clients", job: str = ""
) -> tuple[pa.Table, int]:
    """Drop rows whose distinct-client count is below k; returns (kept rows, groups suppressed).

    The job states the count itself (e.g. `count(DISTINCT client_id) AS clients`): only the job
    knows what a group is, and a count that is missing is refused rather than guessed.

    >>> t = pa.table({"family": ["a", "b", "c"], "clients": [12, 3, None]})
    >>> kept, n = suppress_small_groups(t, 10)
    >>> kept.column("family").to_pylist(), n
    (['a'], 2)
    """
    if clients_column not in table.column_names:
        raise JobError(
            f"job '{job}' is public but its output has no '{clients_column}' column",
            f"Add count(DISTINCT client_id) AS {clients_column} per group, or set "
            "clients_column to the column that holds it",
        )
    col = table.column(clients_column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise JobError(
            f"job '{job}': '{clients_column}' is {col.type}, not a count",
            "Make it count(DISTINCT client_id)",
        )
    keep = pc.fill_null(pc.greater_equal(col, k), False)
    kept = table.filter(keep)
    return kept, table.num_rows - kept.num_rows
