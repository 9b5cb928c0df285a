"""Malformed lines of external CSV/JSON-lines inputs are quarantined with a reason."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huntlab.catalog.store import DatasetEntry
from huntlab.connectors.base import connector_for
from huntlab.jobs.quarantine import QUARANTINE
from huntlab.jobs.runner import run_job
from huntlab.workspace import Workspace

CSV = "a,b,n\nx,1,2\ny,2\nz,3,abc\nw,4,5,6\n\nv,5,7\nu,6,8\ntrunc,6"
JSONL = (
    '{"a":"x","n":1}\n{"a":\n\n{"a":"z","n":"abc"}\n{"a":"q","n":2}\n'
    'not json at all\n{"a":"r","n":3}\n{"a":"t","n":3'
)
SCHEMA = {"a": "VARCHAR", "b": "BIGINT", "n": "BIGINT"}


def _add(ws: Workspace, name: str, path: Path, fmt: str, schema: dict[str, str]) -> None:
    ws.store.add_dataset(
        DatasetEntry(
            name=name, kind="external", format=fmt, location=str(path), declared_schema=schema
        )
    )


def _workspace(root: Path) -> Workspace:
    ws = Workspace.init(root / "ws")
    (root / "hits.csv").write_text(CSV)
    (root / "seen.jsonl").write_text(JSONL)
    _add(ws, "hits", root / "hits.csv", "csv", SCHEMA)
    _add(ws, "seen", root / "seen.jsonl", "jsonl", {"a": "VARCHAR", "n": "BIGINT"})
    (ws.jobs_dir / "all_hits.sql").write_text(
        "-- output: all_hits\nSELECT a, b, n FROM hits ORDER BY a\n"
    )
    (ws.jobs_dir / "all_seen.py").write_text(
        "from huntlab import job\n\n@job(output='all_seen')\n"
        "def all_seen(seen):\n    return seen.select('a', 'n')\n"
    )
    return ws


def _quarantined(ws: Workspace, run_id: int) -> list[tuple]:
    t = connector_for(ws.store.get_dataset(QUARANTINE)).read()
    rows = [r for r in t.to_pylist() if r["run_id"] == run_id]
    return sorted(
        (r["dataset"], Path(r["file"]).name, r["line"], r["raw"], r["reason"]) for r in rows
    )


def _check(ws: Workspace, engine: str) -> dict:
    out = {}
    for job in ("all_hits", "all_seen"):
        res = run_job(ws, job, engine_name=engine)
        assert len(res.quarantined) == 1
        assert (
            "quarantined in `quarantine` (see `huntlab datasets show quarantine`)"
            in (res.quarantined[0])
        )
        out[job] = (sorted(res.table.to_pylist(), key=str), _quarantined(ws, res.run_id))
    return out


EXPECTED_HITS = [
    ("hits", "hits.csv", 3, "y,2", "CSV: expected 3 columns, found 2"),
    ("hits", "hits.csv", 4, "z,3,abc", "cannot cast 'abc' to BIGINT in column n"),
    ("hits", "hits.csv", 5, "w,4,5,6", "CSV: expected 3 columns, found 4"),
    ("hits", "hits.csv", 9, "trunc,6", "CSV: expected 3 columns, found 2"),
]
EXPECTED_SEEN = [
    ("seen", "seen.jsonl", 2, '{"a":', "invalid JSON"),
    ("seen", "seen.jsonl", 4, '{"a":"z","n":"abc"}', "cannot cast 'abc' to BIGINT in column n"),
    ("seen", "seen.jsonl", 6, "not json at all", "invalid JSON"),
    ("seen", "seen.jsonl", 8, '{"a":"t","n":3', "invalid JSON"),
]


def test_embedded_engine_quarantines_with_reasons(tmp_path: Path) -> None:
    got = _check(_workspace(tmp_path), "duckdb")
    rows, q = got["all_hits"]
    assert [r["a"] for r in rows] == ["u", "v", "x"]
    assert q == EXPECTED_HITS
    rows, q = got["all_seen"]
    assert sorted(r["a"] for r in rows) == ["q", "r", "x"]
    assert q == EXPECTED_SEEN


@pytest.mark.spark
def test_both_engines_give_the_same_rows_and_quarantine(tmp_path: Path) -> None:
    from tests.engines.both_engines import spark_of

    embedded = _check(_workspace(tmp_path / "d"), "duckdb")
    on_spark = _check(spark_of(_workspace(tmp_path / "s")), "spark")
    assert on_spark == embedded
    assert on_spark["all_hits"][1] == EXPECTED_HITS


def test_clean_files_quarantine_nothing(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    (tmp_path / "ok.csv").write_text("a,b,n\nx,1,2\ny,2,3\n")
    _add(ws, "hits", tmp_path / "ok.csv", "csv", SCHEMA)
    (ws.jobs_dir / "all_hits.sql").write_text("-- output: all_hits\nSELECT * FROM hits\n")
    res = run_job(ws, "all_hits", engine_name="duckdb")
    assert res.quarantined == [] and res.rows_out == 2
    assert not ws.store.has_dataset(QUARANTINE)


_line = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40).map(
    lambda s: s.replace("\n", " ").replace("\r", " ")
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.lists(_line, max_size=8), fmt=st.sampled_from(["csv", "jsonl"]))
def test_junk_never_crashes_and_every_line_is_read_or_quarantined(
    tmp_path_factory: pytest.TempPathFactory, junk: list[str], fmt: str
) -> None:
    root = tmp_path_factory.mktemp("junk")
    ws = Workspace.init(root / "ws")
    good = ["x,1,2", "y,2,3"] if fmt == "csv" else ['{"a":"x","n":1}', '{"a":"y","n":2}']
    body = ([("a,b,n")] if fmt == "csv" else []) + good + junk
    (root / f"f.{fmt}").write_text("\n".join(body))
    schema = SCHEMA if fmt == "csv" else {"a": "VARCHAR", "n": "BIGINT"}
    _add(ws, "f", root / f"f.{fmt}", fmt, schema)
    (ws.jobs_dir / "j.sql").write_text("-- output: j_out\nSELECT * FROM f\n")
    res = run_job(ws, "j", engine_name="duckdb")
    q = _quarantined(ws, res.run_id) if ws.store.has_dataset(QUARANTINE) else []
    non_empty = sum(1 for line in body[1 if fmt == "csv" else 0 :] if line.strip())
    assert res.rows_out + len(q) == non_empty
    assert isinstance(res.table, pa.Table)


def test_a_run_without_writing_says_it_quarantined_nothing(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    res = run_job(ws, "all_hits", engine_name="duckdb", write=False)
    assert res.quarantined == [
        "4 malformed rows of hits found, not quarantined (a run without writing); the first: "
        f"{tmp_path / 'hits.csv'}:3: CSV: expected 3 columns, found 2"
    ]
    assert not ws.store.has_dataset(QUARANTINE)
