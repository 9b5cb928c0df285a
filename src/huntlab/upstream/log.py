"""The durable event log: append-only segment files of checksummed Arrow frames, fsynced.

A frame is `magic | header length | payload length | crc32 | header (JSON) | payload (Arrow IPC)`.
The collector appends one frame per accepted batch (and one per quarantined batch) and answers
only once the frame is on disk (group commit: one fsync covers every frame written before it).
Readers (compaction, the stream processor) walk frames from a `Position` up to the last complete
frame, so they can run while the collector appends. A frame torn by a crash fails its checksum:
readers stop before it and the next writer truncates it away. Batch ids of every frame still
present (in the log or in `compacted/`) are indexed on open, so a resent batch is stored once.
The interface (append, read_from, positions) leaves room for a Kafka-backed log later.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from huntlab.errors import ConnectorError

MAGIC = b"HLG1"
_HEAD = struct.Struct("<4sIII")  # magic, header length, payload length, crc32
SEGMENT_GLOB = "segment-*.log"
COMPACTED = "compacted"


@dataclass(frozen=True, order=True)
class Position:
    """A place in the log: a segment number and a byte offset in it (frames start there)."""

    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"

    @classmethod
    def parse(cls, text: str | None) -> Position:
        """The inverse of str(); None or '' is the log's beginning."""
        if not text:
            return START
        seg, _, off = text.partition(":")
        return cls(int(seg), int(off))


START = Position(0, 0)


@dataclass(frozen=True)
class AppendResult:
    """Where a batch landed; duplicate when its id was already in the log."""

    duplicate: bool
    end: Position


@dataclass(frozen=True)
class Frame:
    """One frame read back: its header, its rows, and the positions around it."""

    start: Position
    end: Position
    batch_id: str
    kind: str
    appended_at: float
    table: pa.Table


def segment_name(n: int) -> str:
    return f"segment-{n:012d}.log"


def _segment_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def encode_frame(batch_id: str, kind: str, table: pa.Table) -> bytes:
    """One frame's bytes (done by whoever prepares the batch, outside the writer's lock)."""
    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.ipc.new_stream(sink, table.schema, options=opts) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    header = json.dumps(
        {"batch_id": batch_id, "kind": kind, "rows": table.num_rows, "appended_at": time.time()}
    ).encode()
    crc = zlib.crc32(payload, zlib.crc32(header))
    return _HEAD.pack(MAGIC, len(header), len(payload), crc) + header + payload


def _frames(
    path: Path, start: int, *, with_payload: bool
) -> Iterator[tuple[int, int, dict, bytes]]:
    """(start, end, header, payload) of each complete, valid frame from byte `start`."""
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        while True:
            head = f.read(_HEAD.size)
            if len(head) < _HEAD.size:
                return
            magic, hlen, plen, crc = _HEAD.unpack(head)
            if magic != MAGIC:
                return
            header = f.read(hlen)
            payload = f.read(plen)
            if len(header) < hlen or len(payload) < plen:
                return
            if zlib.crc32(payload, zlib.crc32(header)) != crc:
                return
            try:
                meta = json.loads(header)
            except ValueError:
                return
            end = pos + _HEAD.size + hlen + plen
            yield pos, end, meta, payload if with_payload else b""
            pos = end


def _decode(payload: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
        return reader.read_all()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LogWriteError(ConnectorError):
    """The log could not take a frame (disk full, permissions): the client should retry."""

    transient = True


class SegmentLog:
    """Read the log in one folder; with `writable=True`, also append (one writer at a time).

    Appends are safe from many threads. Only the writer repairs a torn tail, so readers never
    change a file the collector is appending to.
    """

    def __init__(
        self, directory: Path, segment_bytes: int = 64 << 20, *, writable: bool = False
    ) -> None:
        self.dir = Path(directory)
        self.segment_bytes = segment_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / COMPACTED).mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._active = 0
        self._written = START
        self._synced = START
        self._batches: dict[str, Position] = {}
        if writable:
            self._take_writer_lock()
            self._index()

    # -- writing ---------------------------------------------------------------------------
    def append(self, batch_id: str, kind: str, table: pa.Table) -> AppendResult:
        """Write one frame and return once it is on disk; a known batch id is not written again."""
        return self.append_many([(batch_id, kind, table)])[0]

    def append_many(self, frames: list[tuple[str, str, pa.Table]]) -> list[AppendResult]:
        """Write several frames and return once all are on disk (one fsync for them all)."""
        return self.append_encoded([(bid, encode_frame(bid, kind, t)) for bid, kind, t in frames])

    def append_encoded(self, frames: list[tuple[str, bytes]]) -> list[AppendResult]:
        """Write frames made by encode_frame; return once all are on disk (one fsync)."""
        if self._lock_fd is None:
            raise ConnectorError(f"the log {self.dir} is open read-only", "Open it writable=True")
        results: list[AppendResult] = []
        with self._lock:
            for batch_id, frame in frames:
                known = self._batches.get(batch_id)
                results.append(AppendResult(True, known) if known else self._write(batch_id, frame))
        self._sync(max(r.end for r in results))
        return results

    def _write(self, batch_id: str, frame: bytes) -> AppendResult:
        """One frame at the end of the active segment (the caller holds the lock)."""
        self._open_for_append()
        if self._written.offset and self._written.offset + len(frame) > self.segment_bytes:
            self._roll()
        assert self._fd is not None
        try:
            written = os.write(self._fd, frame)
            if written != len(frame):
                raise OSError(f"short write ({written} of {len(frame)} bytes)")
        except OSError as exc:
            self._recover_tail()
            raise LogWriteError(
                f"cannot append to the upstream log {self.dir}: {exc}",
                "Free disk space or fix permissions; the client retries",
            ) from exc
        end = Position(self._active, self._written.offset + len(frame))
        self._written = end
        self._batches[batch_id] = end
        return AppendResult(duplicate=False, end=end)

    def _sync(self, upto: Position) -> None:
        """Group commit: one fsync makes every frame written before it durable."""
        with self._sync_lock:
            if self._synced >= upto:
                return
            with self._lock:
                target = self._written
                # A duplicate of the descriptor: a concurrent roll may close the original.
                fd = os.dup(self._fd) if self._fd is not None else None
            if fd is not None:
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
            self._synced = max(self._synced, target)

    def _open_for_append(self) -> None:
        if self._fd is not None:
            return
        path = self.dir / segment_name(self._active)
        new = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if new:
            _fsync_dir(self.dir)

    def _roll(self) -> None:
        """Seal the active segment (already fsynced by its appends) and start the next one."""
        assert self._fd is not None
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._active += 1
        self._written = self._synced = Position(self._active, 0)
        self._open_for_append()

    def _recover_tail(self) -> None:
        """Cut a partly written frame off the active segment (after a crash or a failed write)."""
        path = self.dir / segment_name(self._active)
        if not path.exists():
            return
        good = 0
        for _, end, _, _ in _frames(path, 0, with_payload=False):
            good = end
        if path.stat().st_size != good:
            with open(path, "r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        self._written = self._synced = Position(self._active, good)

    def _index(self) -> None:
        """Batch ids of every frame present; the newest segment becomes the active one."""
        for path in self._all_segments():
            for _, end, meta, _ in _frames(path, 0, with_payload=False):
                self._batches[meta["batch_id"]] = Position(_segment_number(path), end)
        live = self.segments()
        self._active = _segment_number(live[-1]) if live else self._next_number()
        self._recover_tail()

    def _take_writer_lock(self) -> None:
        import fcntl

        self._lock_fd = os.open(self.dir / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ConnectorError(
                f"another collector is already writing to {self.dir}",
                "Stop it first, or give this one its own [upstream] log_dir",
            ) from None

    def _next_number(self) -> int:
        done = sorted(_segment_number(p) for p in (self.dir / COMPACTED).glob(SEGMENT_GLOB))
        return done[-1] + 1 if done else 0

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fdatasync(self._fd)
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> SegmentLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        """Live segment files (not yet compacted away), oldest first."""
        return sorted(self.dir.glob(SEGMENT_GLOB), key=_segment_number)

    def _all_segments(self) -> list[Path]:
        return sorted(
            [*(self.dir / COMPACTED).glob(SEGMENT_GLOB), *self.segments()], key=_segment_number
        )

    def read_from(
        self,
        position: Position = START,
        *,
        kinds: set[str] | None = None,
        include_compacted: bool = False,
    ) -> Iterator[Frame]:
        """Every complete frame at or after `position`, in log order."""
        paths = self._all_segments() if include_compacted else self.segments()
        for path in paths:
            n = _segment_number(path)
            if n < position.segment:
                continue
            start = position.offset if n == position.segment else 0
            for s, e, meta, payload in _frames(path, start, with_payload=True):
                if kinds is not None and meta["kind"] not in kinds:
                    continue
                yield Frame(
                    Position(n, s),
                    Position(n, e),
                    meta["batch_id"],
                    meta["kind"],
                    meta.get("appended_at", 0.0),
                    _decode(payload),
                )

    def end(self) -> Position:
        """The position after the last complete frame."""
        last = START
        for path in self.segments()[-1:]:
            n = _segment_number(path)
            last = Position(n, 0)
            for _, e, _, _ in _frames(path, 0, with_payload=False):
                last = Position(n, e)
        return last

    def retire(self, before: Position) -> list[Path]:
        """Move segments wholly before `before` into compacted/ (kept there for de-duplication)."""
        moved = []
        for path in self.segments():
            n = _segment_number(path)
            if n < before.segment:
                target = self.dir / COMPACTED / path.name
                os.replace(path, target)
                moved.append(target)
        if moved:
            _fsync_dir(self.dir)
        return moved

    def prune(self, older_than_s: float) -> list[Path]:
        """Delete compacted segments untouched for longer than the de-duplication window."""
        cutoff = time.time() - older_than_s
        gone = [p for p in (self.dir / COMPACTED).glob(SEGMENT_GLOB) if p.stat().st_mtime < cutoff]
        for p in gone:
            p.unlink()
        return gone

    def stats(self) -> dict[str, Any]:
        """Segment counts and bytes, for the CLI."""
        live = self.segments()
        return {
            "segments": len(live),
            "bytes": sum(p.stat().st_size for p in live),
            "batches_indexed": len(self._batches),
        }
