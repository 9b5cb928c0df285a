"""Registered domains from the shipped public-suffix list, and site popularity ranks."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pyarrow as pa

from huntlab.errors import MissingDependency


@lru_cache(maxsize=2)
def _psl(only_icann: bool) -> Any:
    try:
        from publicsuffixlist import PublicSuffixList
    except ImportError as exc:
        raise MissingDependency("publicsuffixlist", "ml") from exc
    # The list ships inside the package: no download at run time.
    return PublicSuffixList(only_icann=only_icann)


def _is_ip(host: str) -> bool:
    return host.replace(".", "").isdigit() or host.startswith("[") or ":" in host


def split_hosts(hosts: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Registered domain, public suffix and 'suffix is a private registry' for every host.

    The list lookup runs once per distinct host (a dictionary), not once per URL.
    """
    import pyarrow.compute as pc

    psl, icann = _psl(False), _psl(True)
    uniq = pc.unique(hosts).to_pylist()
    reg, suffix, private = [], [], []
    for h in uniq:
        if not h or _is_ip(h):
            reg.append(h or "")
            suffix.append("")
            private.append(False)
            continue
        ps = psl.publicsuffix(h) or h.rsplit(".", 1)[-1]
        reg.append(psl.privatesuffix(h) or h)
        suffix.append(ps)
        private.append(ps != (icann.publicsuffix(h) or ps))
    idx = pc.index_in(hosts, value_set=pa.array(uniq, pa.large_string()))
    return pa.table(
        {
            "reg_domain": pc.take(pa.array(reg, pa.large_string()), idx),
            "suffix": pc.take(pa.array(suffix, pa.large_string()), idx),
            "private_suffix": pc.take(pa.array(private, pa.bool_()), idx),
        }
    )


def registered_domains(urls: list[str] | pa.Array) -> pa.Array:
    """The registered domain of each URL (canonicalized first), e.g. for grouped splits."""
    from huntlab.ml.canonical import canonicalize, connect

    arr = (
        urls if isinstance(urls, pa.Array | pa.ChunkedArray) else pa.array(urls, pa.large_string())
    )
    con = connect()
    try:
        parts = canonicalize(con, arr)
    finally:
        con.close()
    return split_hosts(parts["host"])["reg_domain"].combine_chunks()


def popularity_ranks(domains: list[str]) -> dict[str, int]:
    """A rank per registered domain (1 = most popular), from an ordered list such as Tranco."""
    ranks: dict[str, int] = {}
    for i, raw in enumerate(domains, start=1):
        d = (raw or "").strip().lower()
        if d and d not in ranks:
            ranks[d] = i
    return ranks
