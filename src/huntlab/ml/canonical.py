"""Canonical URLs in DuckDB SQL: one vectorised pass that cleans and splits every URL into parts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

# Each CTE step is one idea; the whole chain runs inside DuckDB over an Arrow table `src(url)`.
# Crawled URLs carry HTML entities (`&amp;amp;`), surrounding quotes and percent-encoding; the
# scheme is dropped (collections have opposite http/https biases), `www.` and case are folded.
CANONICAL_SQL = r"""
WITH cleaned AS (
    SELECT row_number() OVER () - 1 AS rid, url AS raw,
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(
            regexp_replace(trim(coalesce(url, '')), '^["'' ]+|["'' ]+$', '', 'g'),
            '&(amp;)+', '&', 'g'),
            '&#(10|13|9);', '', 'g'),
            '&quot;', '"', 'g'),
            '[\r\n\t]', '', 'g') AS s
    FROM src
), split AS (
    SELECT rid, raw, s,
        regexp_replace(s, '^[A-Za-z][A-Za-z0-9+.-]*:/*', '') AS rest
    FROM cleaned
), auth AS (
    SELECT rid, raw, s,
        regexp_extract(rest, '^([^/?#\\]*)', 1) AS authority,
        substr(rest, length(regexp_extract(rest, '^([^/?#\\]*)', 1)) + 1) AS after
    FROM split
), parts AS (
    SELECT rid, raw, s, authority,
        regexp_replace(authority, '^.*@', '') AS hostport,
        regexp_extract(after, '^([^?#]*)', 1) AS path_raw,
        regexp_extract(after, '\?([^#]*)', 1) AS query_raw,
        regexp_extract(after, '#(.*)$', 1) AS fragment
    FROM auth
)
SELECT rid,
    raw,
    contains(authority, '@') AS has_userinfo,
    regexp_extract(hostport, ':([0-9]*)$', 1) AS port,
    regexp_replace(
        regexp_replace(lower(regexp_replace(hostport, ':[0-9]*$', '')), '\.+$', ''),
        '^www[0-9]*\.', '') AS host,
    coalesce(try(url_decode(path_raw)), path_raw) AS path,
    coalesce(try(url_decode(query_raw)), query_raw) AS query,
    fragment,
    length(s) AS raw_len,
    length(regexp_replace(s, '%[0-9A-Fa-f]{2}', '', 'g')) AS unencoded_len
FROM parts
ORDER BY rid
"""


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for feature SQL (no progress bar on the terminal)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def canonicalize(con: duckdb.DuckDBPyConnection, urls: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Split URLs into canonical host, path, query and fragment (one row per input, same order)."""
    src = pa.table({"url": pa.chunked_array([urls]) if isinstance(urls, pa.Array) else urls})
    src = src.cast(pa.schema([("url", pa.large_string())]))
    con.register("src", src)
    try:
        out = con.execute(CANONICAL_SQL).to_arrow_table()
    finally:
        con.unregister("src")
    return out


def canonical_text(parts: pa.Table) -> pa.ChunkedArray:
    """The canonical URL as text (host + lower-cased path and query), what n-grams are made of."""
    import pyarrow.compute as pc

    q = pc.if_else(
        pc.equal(parts["query"], ""), "", pc.binary_join_element_wise("?", parts["query"], "")
    )
    text = pc.binary_join_element_wise(parts["host"], pc.utf8_lower(parts["path"]), "")
    return pc.binary_join_element_wise(text, pc.utf8_lower(q), "")
