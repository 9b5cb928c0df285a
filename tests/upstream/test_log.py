"""The durable log: frames survive restarts, torn tails are cut, batch ids are stored once."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from huntlab.errors import ConnectorError
from huntlab.upstream.log import START, Position, SegmentLog

pytestmark = pytest.mark.upstream


def rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"i": pa.array(range(start, start + n), pa.int64())})


def all_i(log: SegmentLog, **kw: object) -> list[int]:
    return [i for f in log.read_from(START, **kw) for i in f.table.column("i").to_pylist()]


def test_append_read_and_dedup_across_restart(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, writable=True) as log:
        assert not log.append("b1", "events", rows(3)).duplicate
        assert log.append("b1", "events", rows(3)).duplicate
        log.append("b2", "quarantine", rows(2, 10))
    with SegmentLog(tmp_path, writable=True) as log:
        assert log.append("b2", "quarantine", rows(2, 10)).duplicate
        assert all_i(log) == [0, 1, 2, 10, 11]
        assert [f.kind for f in log.read_from(START, kinds={"quarantine"})] == ["quarantine"]


def test_torn_tail_is_invisible_to_readers_and_cut_by_the_writer(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, writable=True) as log:
        log.append("b1", "events", rows(5))
        end = log.end()
    seg = log.segments()[-1]
    with open(seg, "ab") as f:  # a crash in the middle of a frame
        f.write(b"HLG1\x10\x00\x00\x00garbage")
    reader = SegmentLog(tmp_path)
    assert all_i(reader) == list(range(5)) and reader.end() == end
    assert seg.stat().st_size > end.offset  # readers never repair
    with SegmentLog(tmp_path, writable=True) as log:
        assert seg.stat().st_size == end.offset
        log.append("b2", "events", rows(1, 5))
        assert all_i(log) == list(range(6))


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, writable=True):
        with pytest.raises(ConnectorError, match="already writing"):
            SegmentLog(tmp_path, writable=True)


def test_concurrent_appends_roll_segments_and_retire(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path, segment_bytes=4096, writable=True)

    def worker(w: int) -> None:
        for b in range(25):
            log.append(f"w{w}-{b}", "events", rows(20, (w * 25 + b) * 20))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(all_i(log)) == list(range(4 * 25 * 20))
    assert len(log.segments()) > 3
    end = log.end()
    moved = log.retire(end)
    assert (
        moved
        and len(log.segments()) == 1
        and log.segments()[0].name.endswith(f"{end.segment:012d}.log")
    )
    assert sorted(all_i(log, include_compacted=True)) == list(range(2000))
    log.close()
    with SegmentLog(tmp_path, segment_bytes=4096, writable=True) as again:  # ids kept after retire
        assert again.append("w0-0", "events", rows(20)).duplicate
        assert not again.append("new", "events", rows(1, 5000)).duplicate


def test_position_text_round_trip() -> None:
    p = Position(3, 4096)
    assert Position.parse(str(p)) == p and Position.parse("") == START
    assert Position(1, 999) < Position(2, 0)
