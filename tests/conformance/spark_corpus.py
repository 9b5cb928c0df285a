"""The conformance corpus: Spark SQL queries and PySpark DataFrame snippets hunting jobs use.

Each case runs on the embedded engine (transpiled / SQLFrame) and on Spark over the same sample
events and small inline tables; test_spark_conformance.py compares the answers. A case with
`gap` is a known difference that the embedded engine refuses with UnsupportedOnEngine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    """One query (or DataFrame snippet) and how to compare its answers."""

    id: str
    sql: str | None = None
    frame: Callable[[Any, Any, Any], Any] | None = None  # (events, F, Window) -> DataFrame
    ordered: bool = False  # compare row order too (ORDER BY semantics under test)
    gap: str | None = None  # the construct the embedded engine refuses


# A small table with NULLs in every column, for NULL semantics and ordering.
T = """WITH t AS (SELECT * FROM VALUES
  (1, 'a', 10.5D, CAST(NULL AS STRING), array(1, 2), '{"k": "v1", "n": {"x": 1}, "a": [1, 2]}'),
  (2, NULL, CAST(NULL AS DOUBLE), 'x', array(), '{"k": "v2", "a": []}'),
  (NULL, 'c', 3.0D, 'y', CAST(NULL AS ARRAY<INT>), 'not json'),
  (4, 'a', -1.25D, NULL, array(3, NULL), '{"k": null, "n": {"x": 2}}'),
  (5, 'b', 7.0D, 'z', array(5), CAST(NULL AS STRING))
  AS t(id, s, v, n, arr, js))
"""
DET = "event_type IN ('blocked_infection', 'beta_detection', 'detection_hits')"

SQL: list[Case] = [
    # -- joins of all kinds
    Case(
        "join_inner",
        f"""WITH f AS (SELECT family, count(*) AS n FROM events WHERE {DET}
        GROUP BY family), c AS (SELECT family, count(DISTINCT country) AS countries
        FROM events WHERE {DET} GROUP BY family)
        SELECT f.family, f.n, c.countries FROM f JOIN c ON f.family = c.family""",
    ),
    Case(
        "join_left",
        """SELECT a.id, a.s, b.n FROM (SELECT * FROM VALUES (1, 'a'), (2, 'b'),
        (3, NULL) AS a(id, s)) a LEFT JOIN (SELECT * FROM VALUES (1, 'x'), (1, 'y'),
        (4, 'z') AS b(id, n)) b ON a.id = b.id""",
    ),
    Case(
        "join_right",
        """SELECT a.id, b.id AS bid, b.n FROM (SELECT * FROM VALUES (1), (2)
        AS a(id)) a RIGHT JOIN (SELECT * FROM VALUES (1, 'x'), (3, 'z') AS b(id, n)) b
        ON a.id = b.id""",
    ),
    Case(
        "join_full",
        """SELECT a.id, b.id AS bid FROM (SELECT * FROM VALUES (1), (2),
        (CAST(NULL AS INT)) AS a(id)) a FULL OUTER JOIN (SELECT * FROM VALUES (2), (3),
        (CAST(NULL AS INT)) AS b(id)) b ON a.id = b.id""",
    ),
    Case(
        "join_left_semi",
        f"""SELECT country, count(*) AS n FROM events e LEFT SEMI JOIN
        (SELECT DISTINCT client_id FROM events WHERE event_type = 'crash') c
        ON e.client_id = c.client_id WHERE {DET} GROUP BY country""",
    ),
    Case(
        "join_left_anti",
        """SELECT product, count(*) AS n FROM events e LEFT ANTI JOIN
        (SELECT DISTINCT client_id FROM events WHERE event_type = 'blocked_url') b
        ON e.client_id = b.client_id GROUP BY product""",
    ),
    Case(
        "join_cross",
        """SELECT a.x, b.y FROM (SELECT explode(array(1, 2, 3)) AS x) a
        CROSS JOIN (SELECT explode(array('p', 'q')) AS y) b""",
    ),
    Case(
        "join_null_safe",
        """SELECT count(*) AS n FROM (SELECT * FROM VALUES (1), (NULL)
        AS a(k)) a JOIN (SELECT * FROM VALUES (1), (NULL) AS b(k)) b ON a.k <=> b.k""",
    ),
    Case(
        "join_using",
        """SELECT * FROM (SELECT * FROM VALUES (1, 'a'), (2, 'b') AS a(id, s))
        JOIN (SELECT * FROM VALUES (2, 'x'), (3, 'y') AS b(id, n)) USING (id)""",
    ),
    Case(
        "join_non_equi",
        """SELECT a.id, b.lo FROM (SELECT * FROM VALUES (1), (5), (9)
        AS a(id)) a JOIN (SELECT * FROM VALUES (0, 4), (4, 8) AS b(lo, hi))
        b ON a.id >= b.lo AND a.id < b.hi""",
    ),
    # -- window functions with frames
    Case(
        "win_row_number",
        """SELECT family, country, n, row_number() OVER (PARTITION BY
        family ORDER BY n DESC, country) AS rk FROM (SELECT family, country, count(*) AS n
        FROM events WHERE family IS NOT NULL GROUP BY family, country)""",
    ),
    Case(
        "win_rank_dense",
        """SELECT country, n, rank() OVER (ORDER BY n DESC) AS r,
        dense_rank() OVER (ORDER BY n DESC) AS d FROM (SELECT country, count(*) % 7 AS n
        FROM events GROUP BY country)""",
    ),
    Case(
        "win_running_sum",
        """SELECT event_date, n, sum(n) OVER (ORDER BY event_date ROWS
        BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM (SELECT event_date,
        count(*) AS n FROM events GROUP BY event_date)""",
    ),
    Case(
        "win_moving_avg",
        """SELECT event_date, avg(n) OVER (ORDER BY event_date ROWS BETWEEN
        2 PRECEDING AND CURRENT ROW) AS ma3 FROM (SELECT event_date, count(*) AS n
        FROM events GROUP BY event_date)""",
    ),
    Case(
        "win_range_frame",
        """SELECT id, v, sum(v) OVER (ORDER BY id RANGE BETWEEN 1
        PRECEDING AND 1 FOLLOWING) AS s FROM (SELECT * FROM VALUES (1, 1.0D), (2, 2.0D),
        (4, 4.0D), (5, 8.0D) AS t(id, v))""",
    ),
    Case(
        "win_lag_lead",
        """SELECT event_date, n, lag(n) OVER (ORDER BY event_date) AS prev,
        lead(n, 2, -1) OVER (ORDER BY event_date) AS next2 FROM (SELECT event_date,
        count(*) AS n FROM events GROUP BY event_date)""",
    ),
    Case(
        "win_first_last",
        """SELECT DISTINCT family, first_value(country) OVER (PARTITION BY
        family ORDER BY n DESC, country ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED
        FOLLOWING) AS top, last_value(country) OVER (PARTITION BY family ORDER BY n DESC,
        country ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS bottom
        FROM (SELECT family, country, count(*) AS n FROM events WHERE family IS NOT NULL
        GROUP BY family, country)""",
    ),
    Case(
        "win_ntile_pct",
        """SELECT country, n, ntile(4) OVER (ORDER BY n, country) AS q,
        round(percent_rank() OVER (ORDER BY n, country), 6) AS pr, round(cume_dist() OVER
        (ORDER BY n, country), 6) AS cd FROM (SELECT country, count(*) AS n FROM events
        GROUP BY country)""",
    ),
    Case(
        "win_count_partition",
        """SELECT DISTINCT product, count(*) OVER (PARTITION BY
        product) AS n, max(hit_count) OVER (PARTITION BY product) AS mx FROM events""",
    ),
    # -- regexp functions
    Case(
        "regexp_extract",
        """SELECT detection_name, regexp_extract(detection_name,
        '^(\\\\w+):([A-Za-z]+)', 2) AS fam, regexp_extract(detection_name, 'zzz(\\\\d)', 1)
        AS none FROM events WHERE detection_name IS NOT NULL""",
    ),
    Case(
        "regexp_like_rlike",
        """SELECT count_if(domain RLIKE '\\\\.(ru|cn)$') AS a,
        count_if(regexp_like(url, '^https://')) AS b, count_if(url REGEXP 'exe') AS c
        FROM events""",
    ),
    Case(
        "regexp_replace",
        """SELECT DISTINCT regexp_replace(detection_name, '\\\\[.*\\\\]',
        '') AS cleaned, regexp_replace(product_version, '(\\\\d+)\\\\.(\\\\d+)', '$2.$1') AS sw
        FROM events WHERE detection_name IS NOT NULL""",
    ),
    Case(
        "regexp_extract_all",
        """SELECT DISTINCT product_version, regexp_extract_all(
        product_version, '(\\\\d+)', 1) AS parts FROM events""",
    ),
    Case(
        "regexp_count_instr",
        """SELECT DISTINCT domain, regexp_count(domain, '\\\\.') AS dots,
        instr(domain, '.') AS first_dot, locate('o', domain) AS o_at FROM events
        WHERE domain IS NOT NULL""",
    ),
    Case(
        "split_and_index",
        """SELECT DISTINCT domain, split(domain, '\\\\.')[0] AS head,
        element_at(split(domain, '\\\\.'), -1) AS tld, size(split(domain, '\\\\.')) AS parts
        FROM events WHERE domain IS NOT NULL""",
    ),
    # -- LATERAL VIEW and generators
    Case("lateral_view_explode", T + """SELECT id, x FROM t LATERAL VIEW explode(arr) e AS x"""),
    Case(
        "lateral_view_outer",
        T
        + """SELECT id, x FROM t LATERAL VIEW OUTER explode(arr) e
        AS x""",
    ),
    Case(
        "lateral_view_posexplode",
        T
        + """SELECT id, p, x FROM t LATERAL VIEW
        posexplode(arr) e AS p, x""",
    ),
    Case(
        "lateral_view_events",
        """SELECT part, count(*) AS n FROM events LATERAL VIEW
        explode(split(product_version, '\\\\.')) e AS part GROUP BY part""",
    ),
    Case(
        "explode_map",
        """SELECT k, v FROM (SELECT map('a', 1, 'b', 2) AS m)
        LATERAL VIEW explode(m) e AS k, v""",
    ),
    Case("explode_select", T + "SELECT id, explode(arr) AS x FROM t"),
    Case(
        "lateral_view_inline",
        """SELECT a, b FROM (SELECT array(struct(1 AS a, 'x' AS b),
        struct(2 AS a, 'y' AS b)) AS arr) LATERAL VIEW inline(arr) e AS a, b""",
        gap="LATERAL VIEW inline/stack",
    ),
    # -- arrays, maps, structs
    Case(
        "array_functions",
        T
        + """SELECT id, size(arr) AS sz, array_contains(arr, 2) AS has2,
        array_distinct(arr) AS d, array_position(arr, 2) AS pos FROM t""",
    ),
    Case(
        "array_agg_sort",
        """SELECT family, sort_array(collect_set(country)) AS countries,
        size(collect_list(country)) AS n FROM events WHERE family IS NOT NULL
        GROUP BY family""",
    ),
    Case(
        "array_higher_order",
        T
        + """SELECT id, transform(arr, x -> x * 10) AS t10,
        filter(arr, x -> x > 1) AS big, exists(arr, x -> x = 5) AS has5 FROM t""",
    ),
    Case(
        "array_concat_slice",
        """SELECT concat(array(1, 2), array(3)) AS c, slice(array(1, 2, 3,
        4), 2, 2) AS s, array_join(array('a', NULL, 'b'), '-') AS j, array_max(array(3, 9, 1))
        AS mx, flatten(array(array(1), array(2, 3))) AS f""",
    ),
    Case(
        "map_functions",
        """SELECT m['a'] AS a, m['zz'] AS missing, map_keys(m) AS ks,
        map_values(m) AS vs, size(m) AS sz FROM (SELECT map('a', 1, 'b', 2) AS m)""",
    ),
    Case(
        "map_from_arrays",
        """SELECT element_at(map_from_arrays(array('x', 'y'), array(1, 2)),
        'y') AS y""",
    ),
    Case("str_to_map", "SELECT str_to_map('a:1,b:2')['b'] AS b", gap="str_to_map"),
    Case(
        "struct_fields",
        """SELECT s.a, s.b, named_struct('x', 1, 'y', 'z').y AS y FROM
        (SELECT struct(1 AS a, 'two' AS b) AS s)""",
    ),
    Case(
        "struct_group",
        """SELECT family, max(struct(hit_count, country)).country AS c
        FROM events WHERE event_type = 'detection_hits' GROUP BY family""",
    ),
    # -- JSON
    Case(
        "get_json_object",
        T
        + """SELECT id, get_json_object(js, '$.k') AS k,
        get_json_object(js, '$.n.x') AS nx, get_json_object(js, '$.a[1]') AS a1,
        get_json_object(js, '$.n') AS n FROM t""",
    ),
    Case(
        "json_tuple",
        T
        + """SELECT id, jk, jn FROM t LATERAL VIEW json_tuple(js, 'k', 'n') j
        AS jk, jn""",
    ),
    Case(
        "from_json",
        T
        + """SELECT id, from_json(js, 'k STRING, n STRUCT<x: INT>').n.x AS x
        FROM t""",
        gap="from_json",
    ),
    Case(
        "regexp_replace_escapes",
        """SELECT regexp_replace('a.b.c', '\\\\.', '\\\\$') AS a,
        regexp_replace('2024-01-05', '(\\\\d+)-(\\\\d+)-(\\\\d+)', '$3/$2/$1') AS b""",
    ),
    Case("to_json", """SELECT to_json(named_struct('a', 1, 'b', 'x')) AS j"""),
    Case(
        "json_array_length",
        T + "SELECT id, json_array_length(get_json_object(js, '$.a')) AS n FROM t",
    ),
    Case(
        "get_json_wildcard",
        T + "SELECT get_json_object(js, '$.a[*]') AS a FROM t",
        gap="get_json_object with a wildcard path",
    ),
    # -- dates, timestamps and time zones
    Case(
        "date_trunc_hour",
        """SELECT date_trunc('HOUR', ts) AS h, count(*) AS n FROM events
        GROUP BY date_trunc('HOUR', ts)""",
    ),
    Case(
        "date_parts",
        """SELECT DISTINCT event_date, year(event_date) AS y, month(event_date)
        AS m, dayofmonth(event_date) AS d, dayofweek(event_date) AS dow, weekofyear(event_date)
        AS wk, quarter(event_date) AS q FROM events""",
    ),
    Case(
        "date_arith",
        """SELECT DISTINCT event_date, date_add(event_date, 3) AS plus3,
        date_sub(event_date, 1) AS minus1, datediff(DATE'2026-12-25', event_date) AS to_xmas,
        add_months(event_date, 1) AS next_month, last_day(event_date) AS eom FROM events""",
    ),
    Case(
        "date_format",
        """SELECT DISTINCT event_date, date_format(event_date, 'yyyy/MM/dd')
        AS d, date_format(event_date, 'EEE') AS wd FROM events""",
    ),
    Case(
        "unix_time",
        """SELECT min(unix_timestamp(ts)) AS a, max(to_unix_timestamp(ts)) AS b,
        from_unixtime(0) AS epoch, from_unixtime(86400, 'yyyy-MM-dd HH:mm') AS d1,
        unix_timestamp('2024-03-01 12:00:00') AS u FROM events""",
    ),
    Case(
        "to_date_timestamp",
        """SELECT to_date('2024-02-29') AS d, to_date('29/02/2024',
        'dd/MM/yyyy') AS d2, to_date('not a date') AS bad, to_timestamp('2024-02-29 13:14:15')
        AS t, to_timestamp('2024-02-29 13:14', 'yyyy-MM-dd HH:mm') AS t2""",
    ),
    Case(
        "timestamp_literals_utc",
        """SELECT TIMESTAMP'2024-06-01 12:00:00' AS t,
        CAST('2024-06-01T12:00:00Z' AS TIMESTAMP) AS t_z,
        CAST('2024-06-01 14:00:00+02:00' AS TIMESTAMP) AS t_off,
        hour(TIMESTAMP'2024-06-01 23:30:00') AS h""",
    ),
    Case(
        "from_utc_timestamp",
        """SELECT from_utc_timestamp(TIMESTAMP'2024-06-01 12:00:00',
        'Europe/Prague') AS local""",
        gap="from_utc_timestamp/to_utc_timestamp",
    ),
    Case(
        "months_between",
        """SELECT months_between(TIMESTAMP'2024-03-15 12:00:00',
        TIMESTAMP'2024-02-01 00:00:00') AS m""",
        gap="months_between",
    ),
    Case(
        "timestampdiff",
        """SELECT timestampdiff(HOUR, TIMESTAMP'2024-01-01 00:00:00',
        TIMESTAMP'2024-01-02 01:30:00') AS h""",
        gap="datediff/timestampdiff with a unit",
    ),
    Case(
        "time_bucket",
        """SELECT from_unixtime(floor(unix_timestamp(ts) / 21600) * 21600)
        AS bucket, count(*) AS n FROM events GROUP BY 1""",
    ),
    # -- casts
    Case(
        "cast_truncates",
        """SELECT CAST(3.7 AS INT) AS a, CAST(-3.7 AS INT) AS b,
        CAST('3.7' AS INT) AS c, CAST('x' AS INT) AS d, CAST(3.7D AS BIGINT) AS e,
        CAST(' 42 ' AS INT) AS f""",
    ),
    Case(
        "cast_overflow_wrap",
        """SELECT CAST(2147483648 AS INT) AS a, CAST(300 AS TINYINT)
        AS b, CAST(1e20D AS BIGINT) AS c""",
    ),
    Case(
        "cast_strings",
        """SELECT CAST(1.0D AS STRING) AS a, CAST(1e7D AS STRING) AS b,
        CAST(0.0001D AS STRING) AS c, CAST(true AS STRING) AS d, CAST(DATE'2024-01-05' AS
        STRING) AS e, CAST(123 AS STRING) AS f""",
    ),
    Case(
        "cast_bool_date",
        """SELECT CAST('yes' AS BOOLEAN) AS a, CAST('0' AS BOOLEAN) AS b,
        CAST('maybe' AS BOOLEAN) AS c, CAST('2024-02-30' AS DATE) AS d,
        CAST('2024-2-3' AS DATE) AS e, CAST(CAST('2024-01-01 10:00:00' AS TIMESTAMP) AS
        BIGINT) AS f""",
    ),
    Case(
        "cast_decimal_div",
        """SELECT 7 / 2 AS a, 7 DIV 2 AS b, -7 DIV 2 AS c, 7 % -3 AS d,
        round(2.5) AS e, round(-2.5) AS f, 1 / 0 AS h""",
    ),
    Case("bround", "SELECT bround(2.5) AS g", gap="bround"),
    # -- approximate counts
    Case(
        "approx_count_distinct",
        """SELECT approx_count_distinct(client_id) AS approx,
        count(DISTINCT client_id) AS exact FROM events""",
    ),
    # -- pivots
    Case(
        "pivot_sum",
        """SELECT * FROM (SELECT product, event_type, hit_count FROM events)
        PIVOT (sum(hit_count) FOR event_type IN ('crash' AS crash,
        'blocked_url' AS blocked_url))""",
    ),
    Case(
        "pivot_count",
        """SELECT * FROM (SELECT product, event_type FROM events)
        PIVOT (count(*) FOR event_type IN ('crash', 'blocked_url'))""",
        gap="PIVOT with count or other aggregates",
    ),
    Case(
        "pivot_by_hand",
        """SELECT product, count_if(event_type = 'crash') AS crash,
        sum(CASE WHEN event_type = 'blocked_url' THEN 1 ELSE 0 END) AS blocked
        FROM events GROUP BY product""",
    ),
    # -- NULL semantics
    Case(
        "null_comparisons",
        T
        + """SELECT id, s = 'a' AS eq, s <=> NULL AS nulleq,
        s IN ('a', NULL) AS in_null, s NOT IN ('a', NULL) AS notin_null,
        coalesce(s, n, 'none') AS co, nvl(v, 0) AS v0, nullif(s, 'a') AS ni FROM t""",
    ),
    Case(
        "null_aggregates",
        T
        + """SELECT count(*) AS n, count(s) AS ns, count(DISTINCT s)
        AS nds, sum(id) AS sid, avg(v) AS av, min(n) AS mn, max(s) AS mx, sum(CAST(NULL AS
        INT)) AS none FROM t""",
    ),
    Case("null_group_by", T + "SELECT s, count(*) AS n, sum(id) AS ids FROM t GROUP BY s"),
    Case(
        "null_string_ops",
        T
        + """SELECT id, concat(s, '-', n) AS c, concat_ws('-', s, n) AS cw,
        length(s) AS ln, upper(s) AS up, s || 'x' AS pipe FROM t""",
    ),
    Case(
        "null_in_subquery",
        T
        + """SELECT id FROM t WHERE id NOT IN (SELECT id FROM t
        WHERE id > 3)""",
    ),
    Case("null_distinct_union", T + """SELECT s FROM t UNION SELECT n FROM t"""),
    Case(
        "null_boolean_logic",
        """SELECT a, b, a AND b AS x, a OR b AS y, NOT a AS z FROM
        VALUES (true, CAST(NULL AS BOOLEAN)), (false, CAST(NULL AS BOOLEAN)),
        (CAST(NULL AS BOOLEAN), CAST(NULL AS BOOLEAN)) AS t(a, b)""",
    ),
    # -- sorting with NULLs
    Case("order_nulls_default_asc", T + "SELECT id, s FROM t ORDER BY s, id", ordered=True),
    Case("order_nulls_default_desc", T + "SELECT id, v FROM t ORDER BY v DESC, id", ordered=True),
    Case(
        "order_nulls_explicit",
        T
        + """SELECT id, s FROM t ORDER BY s ASC NULLS LAST,
        id DESC NULLS FIRST""",
        ordered=True,
    ),
    Case(
        "order_limit",
        """SELECT country, count(*) AS n FROM events GROUP BY country
        ORDER BY n DESC, country LIMIT 5""",
        ordered=True,
    ),
    # -- strings and hashing hunting jobs use
    Case(
        "string_functions",
        """SELECT DISTINCT domain, lower(domain) AS lo, substr(domain, 2, 3)
        AS sub, substring(domain, -3) AS tail, reverse(domain) AS rev, lpad(domain, 12, '*')
        AS lp, trim('  x ') AS tr, initcap(domain) AS ic FROM events
        WHERE domain IS NOT NULL""",
    ),
    Case(
        "parse_url",
        """SELECT DISTINCT url, parse_url(url, 'HOST') AS host, parse_url(url,
        'PATH') AS path, parse_url(url, 'QUERY') AS q FROM events WHERE url IS NOT NULL""",
    ),
    Case(
        "hashes",
        """SELECT DISTINCT client_id, md5(client_id) AS m, sha2(client_id, 256) AS s,
        length(sha1(client_id)) AS s1 FROM events""",
    ),
    Case("crc32", "SELECT DISTINCT crc32(client_id) AS c FROM events", gap="crc32"),
    Case("murmur_hash", "SELECT DISTINCT hash(client_id) AS h FROM events", gap="hash"),
    # -- grouping, filters, CTEs, set operations
    Case(
        "having_filter",
        f"""SELECT family, count(*) AS n, count(*) FILTER (WHERE
        event_type = 'beta_detection') AS beta FROM events WHERE {DET} GROUP BY family
        HAVING count(DISTINCT client_id) > 2""",
    ),
    Case(
        "rollup", """SELECT product, os, count(*) AS n FROM events GROUP BY ROLLUP(product, os)"""
    ),
    Case(
        "set_ops",
        """SELECT country FROM events WHERE event_type = 'crash' INTERSECT SELECT
        country FROM events WHERE event_type = 'blocked_url' EXCEPT SELECT 'US'""",
    ),
    Case(
        "case_when",
        """SELECT CASE WHEN hit_count > 5 THEN 'many' WHEN hit_count > 1 THEN
        'some' ELSE 'one' END AS bucket, count(*) AS n, if(min(hit_count) > 0, 'pos', 'other')
        AS sign FROM events GROUP BY 1""",
    ),
    Case(
        "integer_sum_type",
        """SELECT product, sum(hit_count) AS hits, sum(schema_version) AS sv,
        avg(hit_count) AS avg_hits, stddev(hit_count) AS sd FROM events GROUP BY product""",
    ),
    Case(
        "percentile",
        """SELECT product, percentile(hit_count, 0.5) AS med,
        percentile_approx(hit_count, 0.5) AS amed FROM events GROUP BY product""",
    ),
]


# -- DataFrame API snippets: (events, F, Window) -> DataFrame


def _top_country(e: Any, F: Any, W: Any) -> Any:
    w = W.partitionBy("family").orderBy(F.col("n").desc(), F.col("country"))
    counts = e.where(F.col("family").isNotNull()).groupBy("family", "country").count()
    counts = counts.withColumnRenamed("count", "n")
    return counts.withColumn("rk", F.row_number().over(w)).where("rk = 1")


def _pivot_count(e: Any, F: Any, W: Any) -> Any:
    return e.groupBy("product").pivot("event_type", ["crash", "blocked_url"]).count()


def _pivot_sum(e: Any, F: Any, W: Any) -> Any:
    return (
        e.groupBy("product")
        .pivot("event_type", ["crash", "detection_hits"])
        .agg(F.sum("hit_count"))
    )


def _json(e: Any, F: Any, W: Any) -> Any:
    js = F.concat(F.lit('{"d": "'), F.col("domain"), F.lit('", "n": 1}'))
    return e.where(F.col("domain").isNotNull()).select(
        F.get_json_object(js, "$.d").alias("d"), F.get_json_object(js, "$.n").alias("n")
    )


FRAMES: list[Case] = [
    Case(
        "df_group_agg",
        frame=lambda e, F, W: e.groupBy("product").agg(
            F.count("*").alias("n"),
            F.sum("hit_count").alias("hits"),
            F.countDistinct("client_id").alias("clients"),
            F.max("ts").alias("last"),
        ),
    ),
    Case("df_window_top", frame=_top_country),
    Case(
        "df_join_left",
        frame=lambda e, F, W: (
            e.groupBy("country")
            .count()
            .join(
                e.where(F.col("event_type") == "crash")
                .groupBy("country")
                .agg(F.count("*").alias("crashes")),
                on="country",
                how="left",
            )
        ),
    ),
    Case(
        "df_join_anti",
        frame=lambda e, F, W: (
            e.select("client_id")
            .distinct()
            .join(
                e.where(F.col("event_type") == "crash").select("client_id"),
                "client_id",
                "left_anti",
            )
        ),
    ),
    Case("df_pivot_count", frame=_pivot_count),
    Case("df_pivot_sum", frame=_pivot_sum),
    Case(
        "df_regexp",
        frame=lambda e, F, W: (
            e.where(F.col("detection_name").isNotNull())
            .select(
                F.regexp_extract("detection_name", r"^(\w+):", 1).alias("platform"),
                F.regexp_replace("detection_name", r"\s*\[.*\]$", "").alias("name"),
            )
            .distinct()
        ),
    ),
    Case("df_get_json_object", frame=_json),
    Case(
        "df_cast_int",
        frame=lambda e, F, W: e.select(
            (F.col("hit_count") / 3).cast("int").alias("third"),
            (F.col("hit_count") * 1.7).cast("int").alias("scaled"),
        ).distinct(),
    ),
    Case(
        "df_explode",
        frame=lambda e, F, W: (
            e.select(F.explode(F.split("product_version", r"\.")).alias("part"))
            .groupBy("part")
            .count()
        ),
    ),
    Case(
        "df_explode_outer",
        frame=lambda e, F, W: (
            e.select("event_type", F.explode_outer(F.split("domain", r"\.")).alias("p"))
            .groupBy("event_type")
            .count()
        ),
        gap="explode_outer",
    ),
    Case(
        "df_window_time",
        frame=lambda e, F, W: (
            e.groupBy(F.window("ts", "1 day"))
            .agg(F.count("*").alias("n"))
            .select(F.col("window.start").alias("day"), "n")
        ),
    ),
    Case(
        "df_null_order",
        frame=lambda e, F, W: e.groupBy("family").count().orderBy(F.col("family").asc_nulls_last()),
        ordered=True,
    ),
    Case(
        "df_dates",
        frame=lambda e, F, W: e.select(
            F.to_date("ts").alias("d"),
            F.date_format("ts", "yyyy-MM").alias("ym"),
            F.hour("ts").alias("h"),
        ).distinct(),
    ),
    Case(
        "df_when_otherwise",
        frame=lambda e, F, W: e.groupBy(
            F.when(F.col("hit_count") > 3, "many").otherwise("few").alias("b")
        ).count(),
    ),
]

CASES = SQL + FRAMES
