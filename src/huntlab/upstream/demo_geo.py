"""A synthetic IP-range -> country table for the demo and tests (not real geography).

Real deployments point [upstream.anonymize] geo_table at a licensed IP-to-country CSV.
"""

from __future__ import annotations

from pathlib import Path

from huntlab.sample import COUNTRIES


def _codes() -> list[str]:
    return [c if isinstance(c, str) else c[0] for c in COUNTRIES]


def country_prefix(country: str) -> str:
    """The /16 prefix the demo table gives a country (inside 10.0.0.0/8)."""
    codes = _codes()
    i = codes.index(country) if country in codes else len(codes)
    return f"10.{i}"


def write_demo_geo(path: Path) -> Path:
    """Write the demo table as start,end,country rows."""
    lines = ["start,end,country"]
    for i, code in enumerate(_codes()):
        lines.append(f"10.{i}.0.0,10.{i}.255.255,{code}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
