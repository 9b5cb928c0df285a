"""Map-reduce jobs over Arrow record batches: a PySpark-RDD-like API run by worker processes."""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import operator
import os
import pickle
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

import pyarrow as pa

from huntlab.errors import JobError

DEFAULT_BATCH_ROWS = 65_536
NARROW_OPS = frozenset({"map", "flatMap", "filter", "mapPartitions"})
WIDE_OPS = frozenset({"reduceByKey", "combineByKey", "groupByKey", "distinct"})

# Running jobs' first stages by job id. Workers are forked after registration, so they inherit the
# user's lambdas and closures: only batches and partial results ever cross a pipe.
_JOBS: dict[int, _Stage] = {}
_JOB_IDS = itertools.count(1)
_NONE: Any = object()  # "no record seen yet", distinct from a None record
_PAIR = (tuple, list)
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


class Step(NamedTuple):
    """One pipeline step, (op, fn); another backend replays the steps in order."""

    op: str
    fn: Any = None  # a callable, (create, merge_value, merge_combiners) for combineByKey, or None


class RemoteUserError(Exception):
    """Stands in for an exception raised in a worker that could not be pickled back."""


class _StepFailure(Exception):
    """A user function failed; args are (message, hint, original exception)."""


def describe(fn: Any) -> str:
    """Name a user function for error messages, e.g. 'lambda at myjob.py:14'."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    code = getattr(target, "__code__", None)
    if code is None and not isinstance(target, type):  # a callable object: name its __call__
        code = getattr(type(target).__call__, "__code__", None)
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    name = "lambda" if name.endswith("<lambda>") else name
    return f"{name} at {os.path.basename(code.co_filename)}:{code.co_firstlineno}" if code else name


def _short(value: Any, limit: int = 200) -> str:
    """A repr trimmed for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure(
    n: int, op: str, fn: Any, record: Any, exc: BaseException, hint: str | None = None
) -> _StepFailure:
    """The failure of step n, naming the step, its function and the original exception."""
    where = f" ({describe(fn)})" if fn is not None else ""
    if hint is None and record is not _NONE:
        hint = f"Failing record: {_short(record)}"
    return _StepFailure(f"{op} step {n}{where} failed: {type(exc).__name__}: {exc}", hint, exc)


def _run_narrow(n: int, step: Step, it: Iterator[Any]) -> Iterator[Any]:
    """Apply one narrow step lazily; a mapPartitions partition is one record batch."""
    op, fn = step
    rec = _NONE
    try:
        if op == "map":
            for rec in it:
                yield fn(rec)
        elif op == "flatMap":
            for rec in it:
                yield from fn(rec)
        elif op == "filter":
            for rec in it:
                if fn(rec):
                    yield rec
        else:
            yield from fn(it)
    except _StepFailure:
        raise  # an upstream step failed and already said so
    except Exception as exc:
        raise _failure(n, op, fn, rec, exc) from exc


def _freeze(rec: Any) -> Any:
    """The distinct() key of a record; dict records (as read from Arrow) key by their items."""
    return tuple(rec.items()) if type(rec) is dict else rec


def _combine(n: int, step: Step, it: Iterator[Any]) -> dict[Any, Any]:
    """Map-side combine of one partition: key -> partial aggregate (or frozen record -> record)."""
    op, fn = step
    acc: dict[Any, Any] = {}
    rec = _NONE
    try:
        if op == "distinct":
            for rec in it:
                acc.setdefault(_freeze(rec), rec)
            return acc
        for rec in it:
            # Unpacking alone would silently split a two-key dict or a two-character string.
            if not isinstance(rec, _PAIR):
                raise TypeError(f"expected a (key, value) pair, got {type(rec).__name__}")
            k, v = rec
            if op == "reduceByKey":
                acc[k] = fn(acc[k], v) if k in acc else v
            elif op == "groupByKey":
                if k in acc:
                    acc[k].append(v)
                else:
                    acc[k] = [v]
            else:
                acc[k] = fn[1](acc[k], v) if k in acc else fn[0](v)
    except _StepFailure:
        raise
    except Exception as exc:
        raise _combine_failure(n, step, rec, acc, exc) from exc
    return acc


def _combine_failure(
    n: int, step: Step, rec: Any, acc: dict[Any, Any], exc: Exception
) -> _StepFailure:
    """Work out after the fact which part of a combine failed, keeping the hot loop lean."""
    op, fn = step
    if op != "distinct" and not (isinstance(rec, _PAIR) and len(rec) == 2):
        hint = f"Map records to (key, value) tuples before {op}"
        return _failure(n, op, None, rec, exc, f"{hint}; failing record: {_short(rec)}")
    try:
        hash(_freeze(rec) if op == "distinct" else rec[0])
    except TypeError:
        hint = "Keys and distinct() records must be hashable: use tuples, not lists"
        return _failure(n, op, None, rec, exc, f"{hint}; failing record: {_short(rec)}")
    if op == "combineByKey":
        fn = fn[1] if rec[0] in acc else fn[0]
    return _failure(n, op, fn, rec, exc)


def _merge(n: int, step: Step, acc: dict[Any, Any], part: dict[Any, Any]) -> None:
    """Merge one partition's partial aggregates into acc."""
    op, fn = step
    merge = (
        fn[2]
        if op == "combineByKey"
        else fn
        if op == "reduceByKey"
        else (operator.iadd if op == "groupByKey" else lambda first, _: first)
    )
    k = _NONE
    try:
        for k, v in part.items():
            acc[k] = merge(acc[k], v) if k in acc else v
    except Exception as exc:
        hint = None if k is _NONE else f"Failing key: {_short(k)}"
        raise _failure(n, op, merge, _NONE, exc, hint) from exc


class _Stage:
    """Narrow steps then at most one wide step: what a worker runs over one batch."""

    def __init__(self, steps: Sequence[tuple[int, Step]], count_only: bool) -> None:
        self.wide = steps[-1] if steps and steps[-1][1].op in WIDE_OPS else None
        self.narrow = steps[:-1] if self.wide else steps
        self.count_only = count_only and self.wide is None
        self.schema: pa.Schema | None = None
        self.batches: list[pa.RecordBatch] = []

    def run(self, records: Iterable[Any]) -> Any:
        """Run over one partition: a partial aggregate dict, a record list or a record count."""
        it: Iterator[Any] = iter(records)
        for n, step in self.narrow:
            it = _run_narrow(n, step, it)
        if self.wide:
            return _combine(*self.wide, it)
        return sum(1 for _ in it) if self.count_only else list(it)

    def merge(self, parts: Iterable[Any]) -> list[Any] | int:
        """Merge the per-partition results, in input order, into the stage output."""
        if self.count_only:
            return sum(parts)
        if not self.wide:
            return list(itertools.chain.from_iterable(parts))
        acc: dict[Any, Any] = {}
        for part in parts:
            _merge(*self.wide, acc, part)
        return list(acc.values()) if self.wide[1].op == "distinct" else list(acc.items())


def _stages(steps: Sequence[Step], count_only: bool) -> list[_Stage]:
    """Cut the pipeline after every wide step; later stages run on the previous stage's output."""
    stages: list[list[tuple[int, Step]]] = [[]]
    for n, step in enumerate(steps, 1):
        stages[-1].append((n, step))
        if step.op in WIDE_OPS:
            stages.append([])
    if not stages[-1] and len(stages) > 1:
        stages.pop()
    return [_Stage(s, count_only and i == len(stages) - 1) for i, s in enumerate(stages)]


def _work(job: int, task: int | pa.Buffer) -> tuple[str, Any]:
    """Worker entry point: run the job's first stage over one batch."""
    stage = _JOBS[job]
    batch = (
        stage.batches[task]
        if isinstance(task, int)
        else pa.ipc.read_record_batch(task, stage.schema)
    )
    try:
        return "ok", stage.run(batch.to_pylist())
    except _StepFailure as failure:
        message, hint, exc = failure.args
        exc.add_note(
            "Traceback in the map-reduce worker:\n" + "".join(traceback.format_exception(exc))
        )
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - a user __reduce__ may raise anything
            remote = RemoteUserError(f"{type(exc).__qualname__}: {exc}")
            remote.__notes__ = exc.__notes__
            exc = remote
        return "fail", _StepFailure(message, hint, exc)


def _receive(future: Future[tuple[str, Any]]) -> Any:
    """The result of one worker task; a user-function failure is re-raised as a _StepFailure."""
    try:
        status, payload = future.result()
    except BrokenProcessPool as exc:
        raise JobError(
            "a map-reduce worker process died",
            "It may have run out of memory; lower parallelism or batch_rows",
        ) from exc
    except Exception as exc:
        raise JobError(
            f"a map-reduce worker failed: {type(exc).__name__}: {exc}",
            "Records and aggregates sent back by workers must be picklable",
        ) from exc
    if status == "fail":
        raise payload
    return payload


def _rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Re-slice a stream of batches into batches of `rows` rows (the last one may be short)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        start = 0
        while start < batch.num_rows:
            size = min(rows - count, batch.num_rows - start)
            pending.append(batch.slice(start, size))
            count, start = count + size, start + size
            if count == rows:
                yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
                pending, count = [], 0
    if count:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


class _Source:
    """The job input: an in-memory table (re-readable) or a one-shot stream of batches."""

    def __init__(self, data: Any, batch_rows: int) -> None:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if not isinstance(data, pa.Table) and not hasattr(data, "__arrow_c_stream__"):
            raise JobError(
                f"Records.from_arrow() cannot read a {type(data).__name__}",
                "Pass a pyarrow Table, RecordBatch or RecordBatchReader",
            )
        self.table: pa.Table | None = data if isinstance(data, pa.Table) else None
        self.reader = None if self.table is not None else pa.RecordBatchReader.from_stream(data)
        self.schema: pa.Schema = data.schema if self.table is not None else self.reader.schema
        self.batch_rows, self.consumed = batch_rows, False

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The input re-chunked to batch_rows rows per batch."""
        if self.table is not None:
            return _rechunk(self.table.to_batches(), self.batch_rows)
        if self.consumed:
            raise JobError(
                "the input RecordBatchReader was already read by an earlier action",
                "Read it into a table with reader.read_all() to run several actions",
            )
        self.consumed = True
        return _rechunk(self.reader, self.batch_rows)


class Records:
    """A lazy collection of records: transformations add steps, actions run them in parallel."""

    def __init__(
        self,
        source: _Source,
        steps: tuple[Step, ...] = (),
        parallelism: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        parallelism = (os.cpu_count() or 1) if parallelism is None else parallelism
        if not isinstance(parallelism, int) or parallelism < 1:
            raise JobError(f"parallelism must be a positive integer, got {parallelism!r}")
        self._source, self._steps = source, steps
        self.parallelism, self.progress = parallelism, progress

    @classmethod
    def from_arrow(
        cls,
        data: pa.Table | pa.RecordBatch | pa.RecordBatchReader | Any,
        *,
        parallelism: int | None = None,
        progress: Callable[[int], None] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> Records:
        """Records of a table or batch stream, one dict (column -> value) per row; lazy."""
        if not isinstance(batch_rows, int) or batch_rows < 1:
            raise JobError(f"batch_rows must be a positive integer, got {batch_rows!r}")
        return cls(_Source(data, batch_rows), (), parallelism, progress)

    @property
    def steps(self) -> list[Step]:
        """The pipeline as (op, fn) steps, for replay on another backend."""
        return list(self._steps)

    def _then(self, op: str, fn: Any = None) -> Records:
        """A new Records with one more step."""
        for f in fn if isinstance(fn, tuple) else () if fn is None else (fn,):
            if not callable(f):
                raise JobError(f"{op} needs a function, got {type(f).__name__}")
        return Records(self._source, (*self._steps, Step(op, fn)), self.parallelism, self.progress)

    def map(self, f: Callable[[Any], Any]) -> Records:
        """Replace each record by f(record)."""
        return self._then("map", f)

    def flatMap(self, f: Callable[[Any], Iterable[Any]]) -> Records:
        """Replace each record by the records of the iterable f(record)."""
        return self._then("flatMap", f)

    def filter(self, f: Callable[[Any], Any]) -> Records:
        """Keep the records for which f(record) is true."""
        return self._then("filter", f)

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]]) -> Records:
        """Replace each partition (one record batch) by f(iterator over its records)."""
        return self._then("mapPartitions", f)

    def reduceByKey(self, f: Callable[[Any, Any], Any]) -> Records:
        """Merge the values of each key of (key, value) records with an associative f."""
        return self._then("reduceByKey", f)

    def combineByKey(
        self,
        create: Callable[[Any], Any],
        merge_value: Callable[[Any, Any], Any],
        merge_combiners: Callable[[Any, Any], Any],
    ) -> Records:
        """Fold each key's values into a combiner: create(v), merge_value(c, v), merge_combiners."""
        return self._then("combineByKey", (create, merge_value, merge_combiners))

    def groupByKey(self) -> Records:
        """Group (key, value) records into (key, [values]) records."""
        return self._then("groupByKey")

    def distinct(self) -> Records:
        """Drop duplicate records, keeping first occurrences."""
        return self._then("distinct")

    def collect(self) -> list[Any]:
        """Run the pipeline and return all records."""
        result = self._run(count_only=False)
        assert isinstance(result, list)
        return result

    def collectAsMap(self) -> dict[Any, Any]:
        """Run the pipeline and return its (key, value) records as a dict."""
        return dict(self.collect())

    def count(self) -> int:
        """Run the pipeline and return the number of records."""
        result = self._run(count_only=True)
        return result if isinstance(result, int) else len(result)

    def take(self, n: int) -> list[Any]:
        """The first n records; without a wide step, reads only the batches it needs."""
        if any(step.op in WIDE_OPS for step in self._steps):
            return self.collect()[: max(n, 0)]
        out: list[Any] = []
        parts = self._first_stage(_stages(self._steps, False)[0], local=True)
        with _reported(parts):
            for part in parts if n > 0 else ():
                out.extend(part)
                if len(out) >= n:
                    break
        return out[:n]

    def to_arrow(self, names: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        """Run the pipeline and return its records (dicts, tuples or scalars) as a table."""
        return _to_table(self.collect(), names, schema)

    def _run(self, count_only: bool) -> list[Any] | int:
        """Run the first stage over the input batches, then later stages on its output."""
        stages = _stages(self._steps, count_only)
        parts = self._first_stage(stages[0])
        with _reported(parts):
            result = stages[0].merge(parts)
            for stage in stages[1:]:
                result = stage.merge([stage.run(result)])
        return result

    def _first_stage(self, stage: _Stage, local: bool = False) -> Iterator[Any]:
        """Per-batch results of a stage, in input order, from a worker pool when worthwhile."""
        stream = self._source.batches()
        head = list(itertools.islice(stream, 2))
        batches = itertools.chain(head, stream)
        results: Iterator[tuple[int, Any]]
        if local or self.parallelism == 1 or len(head) < 2 or not _CAN_FORK:
            results = ((b.num_rows, stage.run(b.to_pylist())) for b in batches)
        else:
            in_memory = self._source.table is not None
            results = _pooled(
                stage,
                self._source.schema,
                list(batches) if in_memory else batches,
                self.parallelism,
            )
        done = 0
        for rows, part in results:
            done += rows
            if self.progress:
                self.progress(done)
            yield part


def _pooled(
    stage: _Stage, schema: pa.Schema, batches: Iterable[pa.RecordBatch], parallelism: int
) -> Iterator[tuple[int, Any]]:
    """(rows, result) per batch, in input order, from a pool of forked worker processes."""
    stage.schema, workers = schema, parallelism
    tasks: Iterator[tuple[int, int | pa.Buffer]]
    if isinstance(batches, list):
        # Forked workers inherit in-memory batches, so only an index is sent.
        stage.batches, workers = batches, min(workers, len(batches))
        tasks = ((b.num_rows, i) for i, b in enumerate(batches))
    else:
        # IPC-serialize so that a sliced batch ships its own rows, not its parent's buffers.
        tasks = ((b.num_rows, b.serialize()) for b in batches)
    job = next(_JOB_IDS)
    _JOBS[job] = stage
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        window: deque[tuple[int, Future[tuple[str, Any]]]] = deque()
        while True:
            # A bounded number of batches in flight, so a large stream is not read ahead.
            for rows, task in itertools.islice(tasks, 2 * workers - len(window)):
                window.append((rows, pool.submit(_work, job, task)))
            if not window:
                return
            rows, future = window.popleft()
            yield rows, _receive(future)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _JOBS.pop(job, None)


@contextlib.contextmanager
def _reported(parts: Iterator[Any]) -> Iterator[None]:
    """Turn a user-function failure into a JobError and stop the batch stream (and its pool)."""
    try:
        yield
    except _StepFailure as failure:
        raise JobError(failure.args[0], failure.args[1]) from failure.args[2]
    finally:
        parts.close()  # now, not when the traceback is collected


def _to_table(records: list[Any], names: list[str] | None, schema: pa.Schema | None) -> pa.Table:
    """Convert records to a table, inferring column types unless a schema is given."""
    if schema is not None:
        if names is not None and list(names) != schema.names:
            raise JobError(f"to_arrow() names {names} differ from the schema's {schema.names}")
        names = schema.names
    columns: list[list[Any]]
    if not records:
        cols = list(names or [])
        columns = [[] for _ in cols]
    elif all(isinstance(r, dict) for r in records):
        cols = list(names or dict.fromkeys(itertools.chain.from_iterable(records)))
        columns = [[r.get(c) for r in records] for c in cols]
    elif all(isinstance(r, tuple) for r in records):
        widths = sorted({len(r) for r in records})
        if len(widths) != 1:
            raise JobError(f"to_arrow() needs tuples of one width, got widths {widths}")
        default = getattr(records[0], "_fields", None) or [f"_{i + 1}" for i in range(widths[0])]
        cols, columns = list(names or default), [list(c) for c in zip(*records)]
    elif not any(isinstance(r, (dict, tuple)) for r in records):
        cols, columns = list(names or ["value"]), [records]
    else:
        raise JobError("to_arrow() needs records of one kind: all dicts, tuples or scalars")
    if len(cols) != len(columns):
        raise JobError(f"to_arrow() got {len(cols)} names {cols} for {len(columns)} fields")
    arrays = []
    for i, (name, values) in enumerate(zip(cols, columns)):
        try:
            arrays.append(pa.array(values, schema.field(i).type if schema is not None else None))
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            hint = "Pass schema= with the column types, or give it values of one type"
            raise JobError(f"column '{name}' cannot be converted to Arrow: {exc}", hint) from exc
    if schema is not None:
        return pa.Table.from_arrays(arrays, schema=schema)
    return pa.Table.from_arrays(arrays, names=cols)
