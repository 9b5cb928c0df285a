"""The Spark engine on local[2]: SQL with parameters, Delta both ways, files, RDDs, errors, CLI."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huntlab.catalog.store import DatasetEntry
from huntlab.errors import DatasetNotFound, EngineError, JobError, SqlError, UnsupportedOnEngine
from huntlab.jobs.normalize import normalize_table
from huntlab.jobs.runner import run_job
from huntlab.workspace import Workspace

pytestmark = pytest.mark.spark


def as_spark(ws: Workspace) -> Workspace:
    """The same workspace opened with [engine] type = "spark" on local[2]."""
    cfg = ws.config.model_copy(deep=True)
    cfg.engine.type, cfg.engine.master, cfg.engine.shuffle_partitions = "spark", "local[2]", 4
    return Workspace(ws.root, cfg)


@pytest.fixture()
def spark(spark_ws):
    engine = spark_ws.engine()
    yield engine
    engine.close()


def test_engine_is_selected_by_config_and_shares_one_session(spark_ws) -> None:
    a, b = spark_ws.engine(), spark_ws.engine("spark")
    try:
        assert a.name == b.name == "spark"
        assert a.spark is b.spark  # one JVM session per process
        conf = a.spark.conf
        assert conf.get("spark.sql.session.timeZone") == "UTC"
        assert conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
        assert conf.get("spark.sql.shuffle.partitions") == "4"
        assert a.spark.sparkContext.master == "local[2]"
    finally:
        a.close()
        b.close()


def test_sql_binds_named_parameters(spark) -> None:
    sql = "SELECT count(*) AS n FROM events WHERE hit_count >= :min AND event_type = :kind"
    got = spark.sql(sql, {"min": 2, "kind": "detection_hits"})
    want = spark.workspace.engine("duckdb").sql(sql, {"min": 2, "kind": "detection_hits"})
    assert got.column("n").to_pylist() == want.column("n").to_pylist()
    assert got.column("n")[0].as_py() > 0


def test_sql_errors_are_one_line_huntlab_errors(spark) -> None:
    with pytest.raises(DatasetNotFound, match="nosuch"):
        spark.sql("SELECT * FROM nosuch")
    with pytest.raises(SqlError, match="UNRESOLVED_COLUMN|cannot be resolved"):
        spark.sql("SELECT no_such_column FROM events")
    with pytest.raises(SqlError, match="only queries"):
        spark.sql("DROP TABLE events")


def test_python_worker_crash_is_a_clear_error(spark) -> None:
    records = spark.records("events")
    crashing = records.map(lambda r: os._exit(3))
    with pytest.raises(EngineError, match="Python worker crashed") as info:
        crashing.count()
    assert "memoryOverhead" in str(info.value)


def test_user_function_failure_names_the_error(spark) -> None:
    failing = spark.records("events").map(lambda r: 1 / 0)
    with pytest.raises(JobError, match="ZeroDivisionError"):
        failing.collect()


def test_out_of_memory_message_says_what_to_change() -> None:
    from huntlab.config import EngineConfig
    from huntlab.engines.spark import classify

    exc = RuntimeError("An error occurred\njava.lang.OutOfMemoryError: Java heap space\n\tat x")
    err = classify(exc, "SQL statement", EngineConfig(driver_memory="1g"), None)
    assert isinstance(err, EngineError)
    assert "driver_memory (now 1g)" in str(err) and "\n" not in str(err)


def test_mapreduce_steps_replay_on_rdds(spark) -> None:
    duck = spark.workspace.engine("duckdb")
    try:
        pipelines = {
            "flat_distinct": lambda r: r.flatMap(lambda e: [e["ts"].hour, e["event_date"].day])
            .distinct(),
            "group": lambda r: r.map(lambda e: (e["product"], 1)).groupByKey()
            .map(lambda kv: (kv[0], len(kv[1]))),
            "combine": lambda r: r.filter(lambda e: e["family"] is not None)
            .map(lambda e: (e["family"], e["hit_count"]))
            .combineByKey(lambda v: (v, 1), lambda c, v: (c[0] + v, c[1] + 1),
                          lambda a, b: (a[0] + b[0], a[1] + b[1])),
        }  # fmt: skip
        for name, build in pipelines.items():
            got = build(spark.records("events")).collect()
            want = build(duck.records("events")).collect()
            assert sorted(got, key=repr) == sorted(want, key=repr), name
        sizes = spark.records("events").mapPartitions(lambda it: [sum(1 for _ in it)]).collect()
        assert sum(sizes) == 30_000
        first = spark.records("events").take(2)
        assert len(first) == 2 and first[0]["ts"].tzinfo is not None
    finally:
        duck.close()


def test_delta_written_by_spark_is_read_by_duckdb_and_back(demo_ws) -> None:
    sws = as_spark(demo_ws)
    first = run_job(sws, "family_prevalence", engine_name="spark")
    assert first.output_version == "0"
    from_duck = demo_ws.engine("duckdb").sql("SELECT * FROM family_prevalence")
    assert normalize_table(from_duck).sort_by("family") == first.table.sort_by("family")
    again = run_job(demo_ws, "family_prevalence", engine_name="duckdb")
    assert again.output_version == "1"
    engine = sws.engine()
    try:
        from_spark = engine.sql("SELECT * FROM family_prevalence")
        assert engine.register(["family_prevalence"]) == {"family_prevalence": "1"}
    finally:
        engine.close()
    assert normalize_table(from_spark).sort_by("family") == again.table.sort_by("family")


def test_failed_spark_job_leaves_the_output_intact(demo_ws) -> None:
    sws = as_spark(demo_ws)
    run_job(sws, "hits_by_family", engine_name="spark")
    bad = sws.jobs_dir / "hits_by_family_bad.py"
    bad.write_text(
        "from huntlab import mapreduce\n\n"
        "@mapreduce(output='hits_by_family')\n"
        "def hits_by_family_bad(events):\n"
        "    return events.map(lambda e: e['no_such_field']).to_arrow()\n"
    )
    with pytest.raises(JobError, match="KeyError"):
        run_job(sws, "hits_by_family_bad", engine_name="spark")
    engine = demo_ws.engine("duckdb")
    try:
        assert engine.register(["hits_by_family"]) == {"hits_by_family": "0"}
        assert engine.sql("SELECT count(*) AS n FROM hits_by_family").column("n")[0].as_py() > 0
    finally:
        engine.close()


def _file_datasets(ws: Workspace, tmp: Path) -> None:
    rows = [{"id": i, "name": f"n{i}", "ts": f"2024-01-0{i % 9 + 1}T10:00:00Z"} for i in range(20)]
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    (tmp / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp / "a.csv").write_text("id,name\n" + "\n".join(f"{i},n{i}" for i in range(20)) + "\n")
    pq.write_table(pa.table({"id": list(range(20)), "v": [i * 0.5 for i in range(20)]}),
                   tmp / "a.parquet")  # fmt: skip
    for fmt in ("jsonl", "csv", "parquet"):
        ws.store.add_dataset(
            DatasetEntry(name=f"f_{fmt}", kind="external", format=fmt,
                         location=str(tmp / f"a.{fmt}")), replace=True)  # fmt: skip


def test_external_files_read_natively_by_spark(demo_ws, tmp_path: Path) -> None:
    _file_datasets(demo_ws, tmp_path)
    spark, duck = as_spark(demo_ws).engine(), demo_ws.engine("duckdb")
    try:
        for fmt in ("jsonl", "csv", "parquet"):
            sql = f"SELECT * FROM f_{fmt} ORDER BY id"
            got, want = normalize_table(spark.sql(sql)), normalize_table(duck.sql(sql))
            assert got == want, fmt
            assert got.num_rows == 20  # the malformed JSON line is dropped on both engines
    finally:
        spark.close()
        duck.close()


def test_spark_only_constructs_run_on_spark_and_are_refused_embedded(demo_ws) -> None:
    (demo_ws.jobs_dir / "rdd_job.py").write_text(
        "from huntlab import job\n\n"
        "@job()\n"
        "def rdd_job(events):\n"
        "    n = events.rdd.map(lambda r: r['country']).distinct().count()\n"
        "    return events.sparkSession.createDataFrame([(n,)], 'countries long')\n"
    )
    got = run_job(as_spark(demo_ws), "rdd_job", engine_name="spark", write=False).table
    assert got.column("countries")[0].as_py() > 10
    with pytest.raises((UnsupportedOnEngine, JobError), match="rdd"):
        run_job(demo_ws, "rdd_job", engine_name="duckdb", write=False)


def test_cli_sql_and_run_on_spark(spark_ws) -> None:
    from typer.testing import CliRunner

    from huntlab.cli.main import app

    runner = CliRunner()
    ws = ["--workspace", str(spark_ws.root)]
    r = runner.invoke(app, [*ws, "sql", "--engine", "spark", "SELECT count(*) AS n FROM events"])
    assert r.exit_code == 0, r.output
    assert "30000" in r.output.replace(",", "")
    r = runner.invoke(app, [*ws, "run", "rising_families", "--engine", "spark", "--no-write"])
    assert r.exit_code == 0, r.output
    assert "succeeded" in r.output


def _java_replacement(match: re.Match[str], rep: str) -> str:
    """java.util.regex.Matcher's replacement rules: backslash escapes, $n group references."""
    out, i = [], 0
    while i < len(rep):
        if rep[i] == "\\":
            out.append(rep[i + 1])
            i += 2
        elif rep[i] == "$":
            out.append(match.group(int(rep[i + 1])))
            i += 2
        else:
            out.append(rep[i])
            i += 1
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "-", "$1", "$2", "\\$", "\\\\", "\\a", "."]), max_size=6))
def test_regexp_replacement_follows_java_on_duckdb(parts: list[str]) -> None:
    """The transpile layer rewrites Java replacement strings; DuckDB must give Java's answer."""
    import duckdb
    from sqlglot import exp

    from huntlab.engines.transpile import install_macros, to_duckdb

    rep = "".join(parts)
    literal = exp.Literal.string(rep).sql(dialect="spark")
    con = duckdb.connect()
    install_macros(con)
    got = con.execute(to_duckdb(f"SELECT regexp_replace('xabyab', '(a)(b)', {literal})")).fetchone()
    want = re.sub("(a)(b)", lambda m: _java_replacement(m, rep), "xabyab")
    assert got == (want,)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_every_spark_failure_becomes_one_line(text: str) -> None:
    from huntlab.engines.spark import classify

    err = classify(RuntimeError(text), "SQL statement", None, "SELECT 1")
    assert "\n" not in str(err) and str(err)


@pytest.mark.parametrize(
    "master,partitions",
    [("local[1]", "2"), ("local[3]", "6"), ("local", "2"), ("local[2, 3]", "4")],
)
def test_shuffle_partitions_follow_local_cores(master: str, partitions: str) -> None:
    from huntlab.config import EngineConfig
    from huntlab.engines.spark_session import session_conf

    conf = session_conf(EngineConfig(type="spark", master=master))
    assert conf["spark.sql.shuffle.partitions"] == partitions
    assert conf["spark.sql.session.timeZone"] == "UTC"


def test_bad_master_is_a_config_error() -> None:
    from huntlab.config import EngineConfig
    from huntlab.engines.spark_session import get_session, session_conf
    from huntlab.errors import ConfigError

    with pytest.raises(ConfigError, match="local\\[N\\]"):
        session_conf(EngineConfig(type="spark", master="local[x]"))
    with pytest.raises(ConfigError, match="unknown Spark master"):
        get_session(EngineConfig(type="spark", master="yarn"))
