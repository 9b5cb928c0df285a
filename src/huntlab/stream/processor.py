"""The stream processor: the durable log -> windows, per-key detectors, alerts; exactly once.

Each micro-batch reads the frames after the checkpointed position, drops late events (counted),
runs the job over the rest, merges the partial aggregates into the open windows, closes the
windows the watermark has passed, scores them per key and raises alerts. A commit is one Delta
commit of the closed windows whose metadata names the log position, the micro-batch number and
the state file (open windows, detectors, de-duplication), fsynced before the commit. State files
are incremental and of even size: each holds the observations every detector learned since the
previous commit and a snapshot of one COMPACT_EVERY-th of the keys (by a hash of the key, in
turn), and names the chain of the last COMPACT_EVERY files a restart loads: per file it replays
the observations (learning is deterministic) and then takes the snapshot, so every key ends at
its state of the last commit. Files outside the committed chain are removed. After a crash the
processor reloads that state and rereads the log from that position: every window and alert
row is written once. Sinks get at-least-once delivery (alerts carry a stable id).
"""

from __future__ import annotations

import os
import pickle
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from huntlab.errors import JobError
from huntlab.stream.alerts import Alert, Deduplicator, Sink, alerts_table
from huntlab.stream.detectors import Detector, Population, make_detector
from huntlab.stream.job import StreamJob
from huntlab.stream.windows import US, assign, event_us, late_mask, merge, split_closed
from huntlab.upstream.log import Position, SegmentLog

if TYPE_CHECKING:
    from huntlab.workspace import Workspace

POSITION_KEY = "huntlab.stream_position"
SEQ_KEY = "huntlab.stream_seq"
STATE_KEY = "huntlab.stream_state"
NEVER = 2**62  # a watermark past every window: closes all of them when draining
MAX_GAP_WINDOWS = 10_000
COMPACT_EVERY = 20  # state files per chain: each snapshots this fraction of the keys
FULL_AFTER = 4  # observations per detector since the last commit beyond which a file holds all


@dataclass
class StreamState:
    """Everything a restart needs besides the log: pickled with every commit."""

    seq: int = 0
    position: str = ""
    max_event_us: int | None = None
    open: pa.Table | None = None
    detectors: dict[str, Detector] = field(default_factory=dict)
    last_start: int | None = None
    dedup: Deduplicator = field(default_factory=Deduplicator)
    population: Population = field(default_factory=Population)
    events: int = 0
    late: int = 0
    windows: int = 0
    alerts: int = 0
    pending_alerts: list[Alert] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)  # state files a restart loads, in order
    learned: list[tuple[str, float, float]] = field(default_factory=list)  # in a file: replayed


@dataclass
class BatchReport:
    """What one micro-batch did."""

    seq: int
    events: int
    late: int
    windows: int
    alerts: list[Alert]
    committed: bool
    position: str
    watermark_us: int | None
    appended_at: list[float]
    seconds: float


class StreamProcessor:
    """Runs one streaming job over the log of a workspace."""

    def __init__(
        self,
        ws: Workspace,
        job: StreamJob,
        *,
        log: SegmentLog | None = None,
        sinks: list[Sink] | None = None,
    ) -> None:
        import duckdb

        from huntlab.connectors.base import connector_for
        from huntlab.engines.transpile import install_macros

        self.ws, self.job, self.cfg = ws, job, ws.config.stream
        self.log = log or SegmentLog(ws.root / ws.config.upstream.log_dir)
        self.sinks = sinks if sinks is not None else []
        self.out = connector_for(ws.ensure_managed(job.output))
        self.alerts_out = connector_for(ws.ensure_managed(f"{job.output}_alerts"))
        self.state_dir = ws.root / self.cfg.state_dir / job.name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone='UTC'")
        install_macros(self.con)
        self.window_us, self.slide_us = job.window_s * US, job.slide_s * US
        self.learned: list[tuple[str, float, float]] = []  # (key, t, x) since the last commit
        self.snapshot_all = False  # set when replaying would cost more than a full snapshot
        self._parts: dict[str, int] = {}  # key -> which state file in a chain snapshots it
        self.state = self._restore()
        self._last_commit = time.monotonic()
        _warm_up()

    # -- checkpoints -------------------------------------------------------------------------
    def _committed(self, conn: Any) -> dict[str, str]:
        if not conn.exists():
            return {}
        for h in conn.table().history(limit=20):
            if SEQ_KEY in h:
                return {k: str(v) for k, v in h.items() if k.startswith("huntlab.")}
        return {}

    def _restore(self) -> StreamState:
        meta = self._committed(self.out)
        if not meta:
            return StreamState()
        state = self._load(meta[STATE_KEY])
        detectors: dict[str, Detector] = {}
        for part in [*(self._load(name) for name in state.chain[:-1]), state]:
            for key, t, x in part.learned:  # a key snapshotted later in the chain is replaced
                det = detectors.get(key) or detectors.setdefault(key, new_detector(self.job))
                det.learn_one(t, x)
            detectors.update(part.detectors)
        state.detectors, state.learned = detectors, []
        if str(state.seq) != meta[SEQ_KEY]:
            raise JobError(
                f"stream job '{self.job.name}': state file {meta[STATE_KEY]} does not match "
                f"commit {meta[SEQ_KEY]}",
                f"Remove {self.state_dir} and the dataset '{self.job.output}' to start afresh",
            )
        alerts_seq = self._committed(self.alerts_out).get(SEQ_KEY)
        if state.pending_alerts and alerts_seq != str(state.seq):
            self._write_alerts(state.pending_alerts, state.seq)  # crashed before the alerts
            self._deliver(state.pending_alerts)
        return state

    def _load(self, name: str) -> StreamState:
        path = self.state_dir / name
        if not path.is_file():
            raise JobError(
                f"stream job '{self.job.name}': state file {name} named by the last commit "
                "is missing",
                f"Remove {self.state_dir} and the dataset '{self.job.output}' to start afresh",
            )
        with open(path, "rb") as f:
            state: StreamState = pickle.load(f)
        return state

    def _save_state(self, state: StreamState) -> str:
        """Write the state file of this commit: what was learned, and one slice of the keys.

        Every key is snapshotted once per COMPACT_EVERY commits, so the cost of a checkpoint
        does not grow with the detectors' history; a file holds every key when that is cheaper
        than replaying (a long gap filled for every key) or when it starts the chain.
        """
        everything = state.detectors
        full = (
            not state.chain or self.snapshot_all or len(self.learned) > FULL_AFTER * len(everything)
        )
        name = f"state-{state.seq:012d}.{'full' if full else 'part'}.pkl"
        state.chain = [name] if full else [*state.chain[-(COMPACT_EVERY - 1) :], name]
        if not full:
            part = state.seq % COMPACT_EVERY
            state.detectors = {k: d for k, d in everything.items() if self._part(k) == part}
            state.learned = self.learned
        tmp = self.state_dir / (name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
                f.flush()
                os.fsync(f.fileno())
        finally:
            state.detectors, state.learned = everything, []
        os.replace(tmp, self.state_dir / name)
        self.learned, self.snapshot_all = [], False
        return name

    def _part(self, key: str) -> int:
        """Which file of a chain snapshots this key (stable across processes, unlike hash())."""
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = zlib.crc32(key.encode()) % COMPACT_EVERY
        return part

    def _prune_states(self) -> None:
        """Remove state files outside the committed chain (older chains, uncommitted leftovers)."""
        keep = set(self.state.chain)
        for p in self.state_dir.glob("state-*.pkl"):
            if p.name not in keep:
                p.unlink(missing_ok=True)

    # -- one micro-batch ---------------------------------------------------------------------
    def _read(self) -> tuple[pa.Table | None, Position, list[float]]:
        pos = Position.parse(self.state.position)
        tables, stamps, end, rows = [], [], pos, 0
        for frame in self.log.read_from(pos, kinds={"events"}, include_compacted=True):
            tables.append(frame.table)
            stamps.append(frame.appended_at)
            end, rows = frame.end, rows + frame.table.num_rows
            if rows >= self.cfg.max_batch_events:
                break
        if not tables:
            return None, pos, stamps
        return pa.concat_tables(tables, promote_options="permissive"), end, stamps

    def _run_job(self, assigned: pa.Table) -> pa.Table:
        group = ["window_start", *self.job.keys]
        if self.job.func is not None:
            out = self.job.func(assigned)
            out = out if isinstance(out, pa.Table) else pa.table(out)
        else:
            from huntlab.engines.transpile import to_duckdb

            self.con.register("events", assigned)
            try:
                out = self.con.execute(to_duckdb(self.job.sql or "")).to_arrow_table()
            finally:
                self.con.unregister("events")
        from huntlab.jobs.normalize import normalize_table

        out = normalize_table(out)  # the types batch jobs get (integer sums are BIGINT)
        missing = [c for c in group if c not in out.schema.names]
        if missing:
            raise JobError(
                f"stream job '{self.job.name}' does not return column(s) {missing}",
                "Select and GROUP BY window_start and every key column",
            )
        values = [c for c in out.schema.names if c not in group]
        bad = [
            c
            for c in values
            if not pa.types.is_integer(out.schema.field(c).type)
            and not pa.types.is_floating(out.schema.field(c).type)
        ]
        if bad or not values:
            raise JobError(
                f"stream job '{self.job.name}': value columns must be numeric sums or counts "
                f"(got {bad or 'none'})",
                "Return counts or sums: they are added up across micro-batches",
            )
        return out

    def step(self, *, drain: bool = False) -> BatchReport:
        """Process whatever the log holds beyond the checkpoint (up to max_batch_events)."""
        t0 = time.perf_counter()
        st = self.state
        table, end, stamps = self._read()
        watermark = self._watermark()
        n = late = 0
        if table is not None and table.num_rows:
            ts = event_us(table)
            is_late = late_mask(ts, self.slide_us, watermark)
            late, n = int(is_late.sum()), table.num_rows
            if late:
                table = table.filter(pa.array(~is_late))
            if table.num_rows:
                partial = self._run_job(assign(table, self.window_us, self.slide_us, watermark))
                st.open = merge(st.open, partial, ["window_start", *self.job.keys])
                top = int(ts.max())
                st.max_event_us = top if st.max_event_us is None else max(st.max_event_us, top)
        st.events, st.late = st.events + n, st.late + late
        st.position = str(end)
        exhausted = drain and (table is None or table.num_rows < self.cfg.max_batch_events)
        watermark = NEVER if exhausted else self._watermark()
        closed = None
        if st.open is not None:
            closed, st.open = split_closed(st.open, self.window_us, watermark)
        results, alerts = self._detect(closed)
        self._deliver(alerts)  # before the commit: sinks are at-least-once either way
        due = time.monotonic() - self._last_commit >= self.cfg.checkpoint_interval_s
        commit = results.num_rows > 0 or bool(alerts) or ((due or exhausted) and n > 0)
        if commit:
            self._commit(results, alerts)
        return BatchReport(
            st.seq,
            n,
            late,
            results.num_rows,
            alerts,
            commit,
            st.position,
            watermark,
            stamps,
            time.perf_counter() - t0,
        )

    def _watermark(self) -> int | None:
        mx = self.state.max_event_us
        return None if mx is None else mx - self.job.watermark_s * US

    def _commit(self, results: pa.Table, alerts: list[Alert]) -> None:
        st = self.state
        st.seq += 1
        st.pending_alerts = alerts
        st.windows += results.num_rows
        st.alerts += len(alerts)
        meta = {
            POSITION_KEY: st.position,
            SEQ_KEY: str(st.seq),
            STATE_KEY: self._save_state(st),
            "huntlab.stream_events": str(st.events),
            "huntlab.stream_late": str(st.late),
        }
        self.out.write(results, mode="append", metadata=meta)
        if alerts:
            self._write_alerts(alerts, st.seq)
        self._prune_states()
        self._last_commit = time.monotonic()

    def _write_alerts(self, alerts: list[Alert], seq: int) -> None:
        self.alerts_out.write(alerts_table(alerts), mode="append", metadata={SEQ_KEY: str(seq)})

    def _deliver(self, alerts: list[Alert]) -> None:
        for sink in self.sinks:
            sink.deliver(alerts)

    # -- detection ---------------------------------------------------------------------------
    def _detect(self, closed: pa.Table | None) -> tuple[pa.Table, list[Alert]]:
        from huntlab.stream.scoring import score_windows

        return score_windows(self, closed)

    def run(
        self,
        *,
        drain: bool = False,
        max_seconds: float | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> StreamState:
        """Micro-batches every batch_interval_s until stopped (or, draining, the log's end)."""
        start = time.monotonic()
        while True:
            tick = time.monotonic()
            rep = self.step(drain=drain)
            if on_batch:
                on_batch(rep)
            if drain and rep.watermark_us == NEVER:
                return self.state
            if max_seconds is not None and time.monotonic() - start >= max_seconds:
                return self.state
            if rep.events < self.cfg.max_batch_events:
                time.sleep(max(0.0, self.cfg.batch_interval_s - (time.monotonic() - tick)))


def new_detector(job: StreamJob) -> Detector:
    """A fresh detector for one key of a job (seeded: the same input gives the same alerts)."""
    # Alerts must come with the window that shows the anomaly (short=1), and de-duplication
    # already silences an ongoing one (holdoff=1); NAB's defaults smooth over five points.
    return make_detector(
        job.detector, seed=0, warmup=job.warmup, poisson=job.poisson, short=1, holdoff=1
    )


def _warm_up() -> None:
    """Pay one-time import costs at start-up, not in the first micro-batch's latency.

    pyarrow imports pandas (about a second) the first time it converts a numpy array, which the
    first micro-batch does; deltalake is imported by the first commit.
    """
    import numpy as np

    pa.array(np.zeros(1))
    try:
        import deltalake  # noqa: F401
    except ImportError:  # a workspace without Delta outputs does not need it
        pass
