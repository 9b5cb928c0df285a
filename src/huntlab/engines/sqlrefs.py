"""Which catalog datasets a Spark SQL statement reads (so only those are registered)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError


def referenced_tables(sql: str) -> list[str]:
    """Table names read by a Spark SQL statement, CTE names excluded, in order of appearance."""
    try:
        trees = sqlglot.parse(sql, read="spark")
    except ParseError:
        return []  # the transpile layer reports syntax errors with their position
    seen: dict[str, None] = {}
    for tree in trees:
        if tree is None:
            continue
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if table.name and table.name.lower() not in ctes and not table.args.get("db"):
                seen.setdefault(table.name, None)
    return list(seen)
