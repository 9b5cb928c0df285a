"""The PySpark API on DuckDB: SQLFrame plus huntlab's gap fillers, on a real connection."""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
from sqlframe.duckdb import Window
from sqlframe.duckdb import functions as F
from sqlframe.duckdb.types import IntegerType, LongType

from huntlab.engines.pyspark_api import (
    KNOWN_GAPS,
    _parse_url_one,
    activated,
    open_session,
    to_arrow,
)
from huntlab.errors import InputError, UnsupportedOnEngine

T0 = datetime(2024, 1, 1, tzinfo=UTC)
URLS = [
    "http://user:pw@evil.com:8080/dl/x.exe?id=7&k=v#top",
    "https://good.org/",
    "ftp://files.net",
    None,
]


def _rows() -> list[tuple]:
    rows = []
    for i in range(40):
        rows.append((
            ["click", "crash", "block", "view"][i % 4],
            ["emotet", "qakbot", "trickbot"][i % 3],
            f"c{i % 7}",
            ["US", "DE", "FR"][i % 3 if i % 5 else 0],
            T0 + timedelta(minutes=17 * i),
            i % 6 + 1,
            URLS[i % 4],
        ))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(
        "CREATE TABLE events (event_type VARCHAR, family VARCHAR, client_id VARCHAR, "
        "country VARCHAR, ts TIMESTAMPTZ, hit_count BIGINT, url VARCHAR)"
    )
    c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", _rows())
    yield c
    c.close()


@pytest.fixture()
def spark(con):
    return open_session(con)


@pytest.fixture()
def events(spark):
    return spark.table("events")


def _q(con, sql: str) -> list[tuple]:
    # Through Arrow: DuckDB's own fetchall needs pytz for TIMESTAMPTZ, which is not installed.
    return [tuple(r.values()) for r in con.execute(sql).to_arrow_table().to_pylist()]


def test_open_session_binds_each_connection(con):
    other = duckdb.connect()
    other.execute("CREATE TABLE only_here AS SELECT 1 AS x")
    assert to_arrow(open_session(other).table("only_here")).num_rows == 1
    assert to_arrow(open_session(con).table("events")).num_rows == 40
    assert _q(con, "SELECT current_setting('TimeZone')") == [("UTC",)]


def test_reads_datasets_registered_as_temp_views(con, spark):
    con.register("feed", pa.table({"domain": ["a.com", "b.org", "a.com"], "hits": [1, 2, 3]}))
    df = spark.table("feed").groupBy("domain").agg(F.sum("hits").alias("hits"))
    assert df.columns == ["domain", "hits"]
    assert sorted(tuple(r.values()) for r in to_arrow(df).to_pylist()) == [
        ("a.com", 4),
        ("b.org", 2),
    ]


def test_group_by_agg_matches_duckdb(con, events):
    df = (events.where(F.col("event_type") != "crash").groupBy("family")
          .agg(F.countDistinct("client_id").alias("clients"), F.sum("hit_count").alias("hits"),
               F.count("*").alias("n")))  # fmt: skip
    got = to_arrow(df)
    assert got.schema.field("hits").type == pa.int64()  # not DuckDB's HUGEINT
    assert dict(zip(df.columns, [f.dataType for f in df.schema.fields]))["hits"] == LongType()
    want = _q(con, "SELECT family, count(DISTINCT client_id), sum(hit_count)::BIGINT, count(*) "
                   "FROM events WHERE event_type <> 'crash' GROUP BY 1")  # fmt: skip
    assert sorted(tuple(r.values()) for r in got.to_pylist()) == sorted(want)
    assert to_arrow(events.groupBy("family").sum("hit_count")).schema.field(1).type == pa.int64()


def test_join(events):
    fams = events.groupBy("family").agg(F.max("hit_count").alias("top"))
    joined = events.join(fams, on="family", how="inner").where(F.col("hit_count") == F.col("top"))
    got = to_arrow(joined.select("family", "hit_count").distinct()).to_pylist()
    assert sorted((r["family"], r["hit_count"]) for r in got) == [
        ("emotet", 4), ("qakbot", 5), ("trickbot", 6)]  # fmt: skip


def test_window_functions(con, events):
    w = Window.partitionBy("client_id").orderBy("ts")
    df = events.select("client_id", "ts", F.row_number().over(w).alias("rn"),
                       F.lag("hit_count").over(w).alias("prev"))  # fmt: skip
    got = sorted(tuple(r.values()) for r in to_arrow(df).to_pylist())
    want = _q(con, "SELECT client_id, ts, row_number() OVER w, lag(hit_count) OVER w FROM events "
                   "WINDOW w AS (PARTITION BY client_id ORDER BY ts)")  # fmt: skip
    assert got == sorted(want)


def test_tumbling_window_matches_duckdb(con, events):
    df = (events.groupBy("family", F.window("ts", "1 hour")).agg(F.count("*").alias("n"))
          .select("family", F.col("window.start").alias("start"),
                  F.col("window.end").alias("end"), "n"))  # fmt: skip
    got = sorted(tuple(r.values()) for r in to_arrow(df).to_pylist())
    want = _q(
        con,
        "SELECT family, make_timestamptz(b * 3600000000), "
        "make_timestamptz((b + 1) * 3600000000), count(*) FROM "
        "(SELECT family, epoch_us(ts) // 3600000000 AS b FROM events) GROUP BY 1, 2, 3",
    )
    assert got == sorted(want) and len(got) > 10


def test_window_start_in_window_spec_like_the_demo_job(events):
    hourly = events.groupBy("family", F.window("ts", "2 hours")).agg(F.count("*").alias("n"))
    w = Window.partitionBy("family").orderBy(F.col("n").desc(), F.col("window.start"))
    top = hourly.withColumn("r", F.row_number().over(w)).where(F.col("r") == 1)
    top = top.select("family", F.col("window.start").alias("peak"))
    assert sorted(r["family"] for r in to_arrow(top).to_pylist()) == [
        "emotet",
        "qakbot",
        "trickbot",
    ]


def test_sliding_window_emits_every_overlapping_window(con, events):
    df = (
        events.groupBy(F.window("ts", "1 hour", "20 minutes"))
        .agg(F.count("*").alias("n"))
        .select(F.col("window.start").alias("s"), F.col("window.end").alias("e"), "n")
    )
    got = {r["s"]: (r["e"], r["n"]) for r in to_arrow(df).to_pylist()}
    stamps = [r[0] for r in _q(con, "SELECT ts FROM events")]
    for start, (end, n) in got.items():
        assert end - start == timedelta(hours=1) and start.minute % 20 == 0
        assert n == sum(start <= t < end for t in stamps)
    assert sum(n for _, n in got.values()) == 3 * 40  # each event lies in three windows
    assert to_arrow(events.select(F.window("ts", "10 minutes", "5 minutes"))).num_rows == 80


def test_window_rejects_bad_durations():
    with pytest.raises(InputError):
        F.window("ts", "1 month")
    with pytest.raises(InputError):
        F.window("ts", "10 minutes", "1 hour")


def test_udfs(spark, events):
    @F.udf(returnType=LongType())
    def url_len(u):
        return None if u is None else len(u)

    @F.udf
    def shout(s):
        return s.upper() + "!"

    tld = F.udf(lambda u: u.rsplit(".", 1)[-1] if u else "none", "string")

    @F.pandas_udf("double")
    def halve(s):
        return s / 2

    df = events.select(
        "url",
        url_len("url").alias("n"),
        shout(F.col("family")),
        tld("url").alias("tld"),
        halve("hit_count").alias("h"),
        "hit_count",
    )
    assert df.columns[2] == "shout(family)"
    table = to_arrow(df)
    assert (
        table.schema.field("n").type == pa.int64() and table.schema.field("h").type == pa.float64()
    )
    for r in table.to_pylist():
        assert r["n"] == (len(r["url"]) if r["url"] else None)
        assert r["shout(family)"].endswith("!") and r["h"] == r["hit_count"] / 2
    spark.udf.register("twice", lambda x: x * 2, IntegerType())
    assert spark.sql("SELECT twice(21) AS x").collect()[0]["x"] == 42


@pytest.mark.parametrize(("part", "want"), [
    ("HOST", "evil.com"), ("PATH", "/dl/x.exe"), ("QUERY", "id=7&k=v"), ("PROTOCOL", "http"),
    ("REF", "top"), ("FILE", "/dl/x.exe?id=7&k=v"), ("AUTHORITY", "user:pw@evil.com:8080"),
    ("USERINFO", "user:pw"), ("NOPE", None),
])  # fmt: skip
def test_parse_url_parts(part, want):
    assert _parse_url_one(URLS[0], part) == want


def test_parse_url_absent_parts_and_keys(events):
    assert _parse_url_one("https://good.org/", "QUERY") is None
    assert _parse_url_one("https://good.org/", "USERINFO") is None
    assert _parse_url_one("http://a.com/a b", "HOST") is None  # java.net.URI rejects it
    assert _parse_url_one(URLS[0], "QUERY", "k") == "v"
    assert _parse_url_one(URLS[0], "QUERY", "missing") is None
    df = events.select(
        "url",
        F.parse_url("url", F.lit("HOST")).alias("host"),
        F.parse_url(F.col("url"), F.lit("QUERY"), F.lit("id")).alias("id"),
    )
    got = {r["url"]: (r["host"], r["id"]) for r in to_arrow(df).to_pylist()}
    assert got == {URLS[0]: ("evil.com", "7"), URLS[1]: ("good.org", None),
                   URLS[2]: ("files.net", None), None: (None, None)}  # fmt: skip


@pytest.mark.parametrize("construct", [
    "DataFrame.rdd", "DataFrame.mapInPandas", "DataFrame.mapInArrow", "DataFrame.foreach",
    "groupBy().applyInPandas", "F.url_decode",
])  # fmt: skip
def test_unsupported_constructs_raise_clearly(events, construct):
    calls = {
        "DataFrame.rdd": lambda: events.rdd.map(lambda r: r),
        "DataFrame.mapInPandas": lambda: events.mapInPandas(lambda it: it, "x long"),
        "DataFrame.mapInArrow": lambda: events.mapInArrow(lambda it: it, "x long"),
        "DataFrame.foreach": lambda: events.foreach(print),
        "groupBy().applyInPandas": lambda: events.groupBy("family").applyInPandas(len, "x long"),
        "F.url_decode": lambda: F.url_decode("url"),
    }
    with pytest.raises(UnsupportedOnEngine) as err:
        calls[construct]()
    assert err.value.construct == construct and "duckdb" in str(err.value)


def test_fixed_silent_differences(events):
    pivot = events.groupBy("family").pivot("country").count()
    assert to_arrow(pivot).num_rows == 3 and "DE" in pivot.columns
    row = events.select(
        F.lit(3.7).cast("int").alias("i"),
        F.lit(-3.7).cast("long").alias("j"),
        (F.col("hit_count") / 4).cast("int").alias("q"),
        "hit_count",
        F.get_json_object(F.lit('{"a": "x", "b": {"c": 1}}'), "$.a").alias("a"),
        F.get_json_object(F.lit('{"a": "x", "b": {"c": 1}}'), "$.b").alias("b"),
        F.get_json_object(F.lit("not json"), "$.a").alias("bad"),
    ).first()
    assert (row["i"], row["j"], row["q"]) == (3, -3, row["hit_count"] // 4)
    assert (row["a"], row["b"], row["bad"]) == ("x", '{"c":1}', None)
    first = events.orderBy("ts").select("ts").first()["ts"]  # TIMESTAMPTZ rows without pytz
    assert first == T0.replace(tzinfo=None)
    assert to_arrow(events).schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert "F.sum on integers" in KNOWN_GAPS


def test_activated_resolves_pyspark_and_restores_sys_modules(con, monkeypatch):
    def pyspark_modules() -> dict[str, object]:
        return {k: v for k, v in sys.modules.items() if k == "pyspark" or k.startswith("pyspark.")}

    fake = types.ModuleType("pyspark")  # stands for a real pyspark imported earlier
    monkeypatch.setitem(sys.modules, "pyspark", fake)
    before = pyspark_modules()  # other tests may have imported real pyspark submodules
    with activated(con) as spark:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as PF

        assert PF is F and PF.window is F.window
        assert SparkSession.builder.getOrCreate() is spark
        with activated(con):  # nested runs keep the outer activation
            assert sys.modules["pyspark.sql.functions"] is F
        assert sys.modules["pyspark.sql.functions"] is F
        assert to_arrow(spark.table("events").select(PF.col("family"))).num_rows == 40
    assert sys.modules["pyspark"] is fake
    assert pyspark_modules() == before
    monkeypatch.delitem(sys.modules, "pyspark")
    before = pyspark_modules()
    with activated(con):
        pass
    assert pyspark_modules() == before
