"""The upstream collector: authenticate, prepare (in worker processes), write durably, acknowledge.

Preparing a batch (decode, check, anonymize, validate, encode) is CPU work in Python, so with
`[upstream] workers = N` it runs in N worker processes; one writer in the collector's process
appends the prepared frames to the log and fsyncs, so de-duplication and ordering stay simple.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from huntlab.errors import ConfigError
from huntlab.upstream.batch import (
    KNOWN_FIELDS,
    MAX_REASONS,
    STRING_FIELDS,
    BadRequest,
    BatchPreparer,
    Prepared,
    refusal_frame,
)
from huntlab.upstream.metrics import Metrics

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from huntlab.config import UpstreamConfig
    from huntlab.workspace import Workspace

__all__ = ["KNOWN_FIELDS", "STRING_FIELDS", "Ack", "BadRequest", "Collector", "client_keys"]


@dataclass
class Ack:
    """What the client is told once its batch is durable."""

    batch_id: str
    accepted: int = 0
    rejected: int = 0
    duplicate: bool = False
    reasons: Counter[str] = field(default_factory=Counter)

    def body(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "reasons": [
                {"reason": r, "count": n} for r, n in self.reasons.most_common(MAX_REASONS)
            ],
        }


def client_keys(env_names: dict[str, str]) -> dict[bytes, str]:
    """Client key -> product, read from the environment (keys never live in huntlab.toml)."""
    keys = {}
    for product, var in env_names.items():
        value = os.environ.get(var)
        if value:
            keys[value.encode()] = product
    if not keys:
        raise ConfigError(
            "no client keys: none of the variables in [upstream.client_keys_env] is set",
            "Set one, e.g. export HUNTLAB_KEY_FREE_AV=$(python -c 'import secrets;"
            "print(secrets.token_hex(16))')",
        )
    return keys


def _preparer(cfg: UpstreamConfig, key: bytes) -> BatchPreparer:
    from huntlab.upstream.anonymize import Anonymizer, GeoTable, Pseudonymizer

    an = cfg.anonymize
    geo = GeoTable.from_csv(an.geo_table) if an.geo_table else GeoTable.empty()
    pseudo = Pseudonymizer(key, an.rotation, link_across_periods=an.link_across_periods)
    return BatchPreparer(cfg, Anonymizer(pseudo, geo))


_WORKER: BatchPreparer | None = None


def _init_worker(cfg_json: str, key: bytes) -> None:
    """Runs once in each worker process: its own preparer (and caches), and a watch on the
    collector, so a worker never outlives it (a SIGKILLed collector cannot shut its pool down,
    and an orphan would hold the collector's log files and output pipes open)."""
    import threading

    from huntlab.config import UpstreamConfig

    global _WORKER
    _WORKER = _preparer(UpstreamConfig.model_validate_json(cfg_json), key)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _ready(_: int) -> bool:
    return _WORKER is not None


def _prepare_in_worker(body: bytes, kwargs: dict[str, Any]) -> Prepared:
    assert _WORKER is not None
    return _WORKER.prepare(body, **kwargs)


class Collector:
    """The collector's logic, independent of HTTP (the ASGI app is a thin shell around it)."""

    def __init__(
        self, ws: Workspace, keys: dict[bytes, str] | None = None, *, workers: int | None = None
    ) -> None:
        from huntlab.upstream.anonymize import load_key
        from huntlab.upstream.log import SegmentLog

        cfg = ws.config.upstream
        self.ws, self.cfg = ws, cfg
        self.keys = keys if keys is not None else client_keys(cfg.client_keys_env)
        self._key = load_key(cfg.anonymize.key_file, cfg.anonymize.key_env)
        self.preparer = _preparer(cfg, self._key)
        self.workers = cfg.workers if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self.log = SegmentLog(
            ws.root / cfg.log_dir, segment_bytes=cfg.segment_mb << 20, writable=True
        )
        self.metrics = Metrics()

    @property
    def anonymizer(self) -> Any:
        return self.preparer.anonymizer

    def _start_pool(self) -> ProcessPoolExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the collector's process has threads (uvicorn, the thread pool).
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.cfg.model_dump_json(), self._key),
        )
        # Start every worker now, so the first batches do not wait for Python to start.
        all(pool.map(_ready, range(self.workers * 4)))
        return pool

    def start(self) -> None:
        """Start the worker processes (before serving; otherwise on the first batch)."""
        if self.workers > 0 and self._pool is None:
            self._pool = self._start_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self.log.close()

    def product_for(self, key: str | None) -> str:
        """The product whose client key this is; constant-time comparison."""
        if key:
            given = key.encode()
            for known, product in self.keys.items():
                if hmac.compare_digest(given, known):
                    return product
        raise BadRequest(
            "missing or unknown client key",
            "Send the product's key as 'Authorization: Bearer KEY'",
            status=401,
        )

    def _prepare(self, body: bytes, kwargs: dict[str, Any]) -> Prepared:
        if self.workers <= 0:
            return self.preparer.prepare(body, **kwargs)
        from concurrent.futures.process import BrokenProcessPool

        from huntlab.upstream.log import LogWriteError

        if self._pool is None:
            self._pool = self._start_pool()
        try:
            return self._pool.submit(_prepare_in_worker, body, kwargs).result()
        except BrokenProcessPool as exc:  # a worker died: start afresh, the client retries
            self._pool = None
            raise LogWriteError("a collector worker process died", "Resend the batch") from exc

    def ingest(
        self,
        body: bytes,
        *,
        product: str,
        peer_ip: str | None,
        batch_id: str | None,
        gzipped: bool = False,
    ) -> Ack:
        """Everything after authentication; returns once accepted events are fsynced."""
        started = time.perf_counter()
        kwargs = {"product": product, "peer_ip": peer_ip, "batch_id": batch_id, "gzipped": gzipped}
        try:
            prepared = self._prepare(body, kwargs)
        except BadRequest as exc:
            self.metrics.add("bad_requests")
            rid = batch_id or hashlib.sha256(body).hexdigest()[:32]
            self.log.append_encoded([refusal_frame(rid, product, exc.message, len(body))])
            self.metrics.add("quarantined")
            raise
        ack = Ack(prepared.batch_id, prepared.accepted, prepared.rejected, reasons=prepared.reasons)
        if prepared.frames:  # every frame of the batch becomes durable with one fsync
            results = self.log.append_encoded(prepared.frames)
            ack.duplicate = any(r.duplicate for r in results)
        self._count(ack)
        self.metrics.observe(time.perf_counter() - started)
        return ack

    def _count(self, ack: Ack) -> None:
        self.metrics.add("requests")
        if ack.duplicate:
            self.metrics.add("duplicate_batches")
            return
        self.metrics.add("accepted", ack.accepted)
        self.metrics.add("rejected", ack.rejected)
        self.metrics.add("quarantined", ack.rejected)
        self.metrics.add_reasons(ack.reasons)
