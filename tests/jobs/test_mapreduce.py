"""Tests for the map-reduce job API: results checked against plain Python and DuckDB SQL."""

from __future__ import annotations

import operator
import os
import pickle
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huntlab.errors import JobError
from huntlab.jobs.mapreduce import Records, RemoteUserError, Step, describe

WORDS = ["dropper", "beacon", "c2", "loader", "stealer", "miner", "worm", "rat"]
FAMILIES = ["emotet", "qakbot", "lumma", "redline", "asyncrat"]


def _lines(n: int) -> pa.Table:
    """A one-column table of space-separated words."""
    return pa.table(
        {
            "line": [
                " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(i % 5 + 1))
                for i in range(n)
            ]
        }
    )


def _telemetry(n: int) -> pa.Table:
    """Events with a type, a malware family and a hit count."""
    return pa.table(
        {
            "event_type": ["detection_hits" if i % 3 else "process_start" for i in range(n)],
            "family": [FAMILIES[(i * 13) % len(FAMILIES)] for i in range(n)],
            "hit_count": [(i * 31) % 17 for i in range(n)],
        }
    )


def _word_count(records: Records) -> Records:
    return (
        records.flatMap(lambda e: e["line"].split()).map(lambda w: (w, 1)).reduceByKey(operator.add)
    )


def _hit_count(records: Records) -> Records:
    return (
        records.filter(lambda e: e["event_type"] == "detection_hits")
        .map(lambda e: (e["family"], e["hit_count"]))
        .reduceByKey(lambda a, b: a + b)
    )


@pytest.mark.parametrize("parallelism", [1, 2])
def test_word_count_matches_python_and_sql(parallelism: int) -> None:
    lines = _lines(5000)
    got = _word_count(
        Records.from_arrow(lines, parallelism=parallelism, batch_rows=700)
    ).collectAsMap()
    assert got == Counter(w for line in lines["line"].to_pylist() for w in line.split())
    sql = (
        "SELECT word, count(*) FROM (SELECT unnest(string_split(line, ' ')) AS word FROM lines)"
        " GROUP BY word"
    )
    assert got == dict(duckdb.sql(sql).fetchall())


@pytest.mark.parametrize("parallelism", [1, 2])
def test_hit_count_to_arrow_matches_sql(parallelism: int) -> None:
    events = _telemetry(10_000)
    out = _hit_count(Records.from_arrow(events, parallelism=parallelism, batch_rows=1500)).to_arrow(
        ["family", "hits"]
    )
    assert out.schema == pa.schema([("family", pa.string()), ("hits", pa.int64())])
    sql = (
        "SELECT family, sum(hit_count)::BIGINT FROM events"
        " WHERE event_type = 'detection_hits' GROUP BY family"
    )
    assert sorted(zip(*out.to_pydict().values())) == sorted(duckdb.sql(sql).fetchall())


def test_parallel_and_serial_results_are_identical() -> None:
    events = _telemetry(20_000)

    def job(p: int) -> Records:
        return Records.from_arrow(events, parallelism=p, batch_rows=3000)

    for build in (
        _hit_count,
        lambda r: r.map(lambda e: e["family"]).distinct(),
        lambda r: r.filter(lambda e: e["hit_count"] > 10).map(lambda e: e["hit_count"]),
    ):
        assert build(job(1)).collect() == build(job(2)).collect()  # same order too
    assert (
        job(1).filter(lambda e: e["hit_count"] == 3).count()
        == job(2).filter(lambda e: e["hit_count"] == 3).count()
    )


def test_batches_run_in_worker_processes() -> None:
    pids = (
        Records.from_arrow(_telemetry(4000), parallelism=2, batch_rows=500)
        .mapPartitions(lambda it: [os.getpid()])
        .distinct()
        .collect()
    )
    assert pids and os.getpid() not in pids
    assert Records.from_arrow(_telemetry(4000), parallelism=1, batch_rows=500).mapPartitions(
        lambda it: [os.getpid()]
    ).distinct().collect() == [os.getpid()]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_combine_by_key_average(parallelism: int) -> None:
    events = _telemetry(9000)
    sums = (
        Records.from_arrow(events, parallelism=parallelism, batch_rows=1000)
        .map(lambda e: (e["family"], e["hit_count"]))
        .combineByKey(
            lambda v: (v, 1),
            lambda c, v: (c[0] + v, c[1] + 1),
            lambda a, b: (a[0] + b[0], a[1] + b[1]),
        )
        .map(lambda kv: (kv[0], kv[1][0] / kv[1][1]))
    )
    expected = dict(
        duckdb.sql("SELECT family, avg(hit_count) FROM events GROUP BY family").fetchall()
    )
    assert sums.collectAsMap() == pytest.approx(expected)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_flat_map_group_by_key_and_distinct(parallelism: int) -> None:
    lines = _lines(3000)
    records = Records.from_arrow(lines, parallelism=parallelism, batch_rows=400)
    words = records.flatMap(lambda e: e["line"].split())
    assert words.count() == sum(len(line.split()) for line in lines["line"].to_pylist())
    assert sorted(words.distinct().collect()) == sorted(WORDS)
    grouped = words.map(lambda w: (w[0], w)).groupByKey().collectAsMap()
    expected: dict[str, list[str]] = defaultdict(list)
    for line in lines["line"].to_pylist():
        for w in line.split():
            expected[w[0]].append(w)
    assert grouped == expected  # value order follows input order
    assert records.distinct().count() == len(
        set(lines["line"].to_pylist())
    )  # dict records are frozen for distinct


def test_take_reads_lazily_and_transforms_compose() -> None:
    seen: list[int] = []
    records = Records.from_arrow(
        _telemetry(10_000), parallelism=2, batch_rows=1000, progress=seen.append
    )
    assert records.map(lambda e: e["hit_count"]).take(3) == [0, 14, 11]
    assert seen == [1000]
    assert _hit_count(records).map(lambda kv: kv[1]).filter(lambda v: v > 0).count() == len(
        FAMILIES
    )


def test_progress_counts_input_rows() -> None:
    seen: list[int] = []
    Records.from_arrow(
        _telemetry(2500), parallelism=2, batch_rows=1000, progress=seen.append
    ).count()
    assert seen == [1000, 2000, 2500]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_user_exception_names_the_step(parallelism: int) -> None:
    records = Records.from_arrow(_telemetry(5000), parallelism=parallelism, batch_rows=1000)
    job = records.filter(lambda e: True).map(lambda e: 1 / (e["hit_count"] - 5))
    with pytest.raises(JobError) as info:
        job.collect()
    message = str(info.value)
    assert "map step 2 (lambda at test_mapreduce.py:" in message
    assert "ZeroDivisionError: division by zero" in message and "'hit_count': 5" in message
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_malformed_records_in_reduce_by_key(parallelism: int) -> None:
    records = Records.from_arrow(_telemetry(3000), parallelism=parallelism, batch_rows=1000)
    with pytest.raises(
        JobError, match=r"reduceByKey step 1 failed: TypeError.*Map records to \(key, value\)"
    ):
        records.reduceByKey(operator.add).collect()
    with pytest.raises(JobError, match=r"reduceByKey step 2 \(add\) failed: TypeError"):
        records.map(lambda e: ("k", e["hit_count"] if e["hit_count"] != 7 else "x")).reduceByKey(
            operator.add
        ).collect()
    with pytest.raises(JobError, match=r"groupByKey step 2 failed.*must be hashable"):
        records.map(lambda e: ([e["family"]], 1)).groupByKey().collect()


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")

    def __reduce__(self) -> Any:
        raise pickle.PicklingError("nope")


def _raise_unpicklable(e: dict[str, Any]) -> Any:
    raise _Unpicklable(1, 2)


def test_unpicklable_worker_exception_still_reported() -> None:
    records = Records.from_arrow(_telemetry(3000), parallelism=2, batch_rows=1000)
    with pytest.raises(
        JobError,
        match=r"flatMap step 1 \(_raise_unpicklable at test_mapreduce.py:\d+\) failed: _Unpickl",
    ) as info:
        records.flatMap(_raise_unpicklable).collect()
    assert isinstance(info.value.__cause__, RemoteUserError)
    assert "_Unpicklable: 1/2" in str(info.value.__cause__)


def test_dead_worker_raises_instead_of_hanging() -> None:
    records = Records.from_arrow(_telemetry(3000), parallelism=2, batch_rows=1000)
    with pytest.raises(JobError, match="worker process died"):
        records.map(lambda e: os._exit(3) if e["hit_count"] == 4 else e).count()
    with pytest.raises(JobError, match="must be picklable"):
        records.map(lambda e: lambda: e).collect()


def test_merge_failure_names_the_step() -> None:
    def merge(a: int, b: int) -> int:
        raise ValueError("bad merge")

    records = Records.from_arrow(_telemetry(3000), parallelism=1, batch_rows=1000)
    with pytest.raises(
        JobError,
        match=r"combineByKey step 2 \(.*merge at test_mapreduce.py:\d+\) failed: ValueError",
    ):
        records.map(lambda e: (e["family"], 1)).combineByKey(int, operator.add, merge).collect()


@pytest.mark.parametrize("parallelism", [1, 2])
def test_empty_input(parallelism: int) -> None:
    empty = _telemetry(0)
    records = Records.from_arrow(empty, parallelism=parallelism)
    assert records.collect() == [] and records.count() == 0 and records.take(5) == []
    assert _hit_count(records).collect() == []
    assert _hit_count(records).to_arrow(["family", "hits"]).column_names == ["family", "hits"]
    schema = pa.schema([("family", pa.string()), ("hits", pa.int64())])
    assert _hit_count(records).to_arrow(schema=schema).schema == schema
    assert Records.from_arrow(empty.to_reader()).map(lambda e: e).collect() == []


def test_reader_input_is_one_shot_and_matches_table() -> None:
    events = _telemetry(9000)
    reader = pa.RecordBatchReader.from_batches(events.schema, events.to_batches(max_chunksize=777))
    records = Records.from_arrow(reader, parallelism=2, batch_rows=1000)
    assert (
        _hit_count(records).collect()
        == _hit_count(Records.from_arrow(events, parallelism=1)).collect()
    )
    with pytest.raises(JobError, match="already read"):
        records.count()


def test_to_arrow_infers_schema() -> None:
    records = Records.from_arrow(_telemetry(10), parallelism=1)
    dicts = records.map(
        lambda e: {"family": e["family"], "n": e["hit_count"], "ok": e["hit_count"] > 3}
    ).to_arrow()
    assert dicts.schema == pa.schema(
        [("family", pa.string()), ("n", pa.int64()), ("ok", pa.bool_())]
    )
    assert records.map(lambda e: e["hit_count"]).to_arrow().schema == pa.schema(
        [("value", pa.int64())]
    )
    assert records.map(lambda e: (e["family"], 1.5)).to_arrow().column_names == ["_1", "_2"]
    assert records.to_arrow().equals(_telemetry(10))
    with pytest.raises(JobError, match="column 'value' cannot be converted"):
        records.map(lambda e: e["family"] if e["hit_count"] > 5 else e["hit_count"]).to_arrow()
    with pytest.raises(JobError, match="2 names"):
        records.map(lambda e: e["family"]).to_arrow(["a", "b"])


def test_steps_are_a_replayable_description() -> None:
    f = lambda e: e  # noqa: E731 - the lambda is what is being described

    job = Records.from_arrow(_telemetry(1)).map(f).groupByKey()
    assert job.steps == [Step("map", f), Step("groupByKey", None)] and job.steps[0] == ("map", f)
    assert describe(f).startswith("lambda at test_mapreduce.py:") and describe(len) == "len"
    with pytest.raises(JobError, match="map needs a function"):
        job.map(3)  # type: ignore[arg-type]
    with pytest.raises(JobError, match="parallelism"):
        Records.from_arrow(_telemetry(1), parallelism=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(st.text(max_size=3), st.integers(-(2**62), 2**62)), max_size=300),
    batch_rows=st.integers(1, 120),
    parallelism=st.sampled_from([1, 2]),
)
def test_reduce_by_key_sum_equals_python(
    rows: list[tuple[str, int]], batch_rows: int, parallelism: int
) -> None:
    table = pa.table(
        {"k": [k for k, _ in rows], "v": [v for _, v in rows]},
        schema=pa.schema([("k", pa.string()), ("v", pa.int64())]),
    )
    got = (
        Records.from_arrow(table, parallelism=parallelism, batch_rows=batch_rows)
        .map(lambda e: (e["k"], e["v"]))
        .reduceByKey(operator.add)
        .collectAsMap()
    )
    expected: dict[str, int] = {}
    for k, v in rows:
        expected[k] = expected.get(k, 0) + v
    assert got == expected


def _chunks(it: Iterator[Any]) -> list[int]:
    return [sum(1 for _ in it)]


@given(sizes=st.lists(st.integers(0, 50), max_size=8), batch_rows=st.integers(1, 60))
@settings(max_examples=50, deadline=None)
def test_rechunking_covers_every_row(sizes: list[int], batch_rows: int) -> None:
    schema = pa.schema([("v", pa.int64())])
    batches, start = [], 0
    for size in sizes:
        batches.append(
            pa.record_batch([pa.array(range(start, start + size), pa.int64())], schema=schema)
        )
        start += size
    records = Records.from_arrow(
        pa.RecordBatchReader.from_batches(schema, batches), parallelism=1, batch_rows=batch_rows
    )
    parts = records.mapPartitions(_chunks).collect()
    assert (
        sum(parts) == start
        and all(p == batch_rows for p in parts[:-1])
        and (not parts or 0 < parts[-1] <= batch_rows)
    )
