"""Alerts: anomalies above threshold become rows in a managed dataset and go to sinks.

A key alerts once when its anomaly starts; while the anomaly lasts (the key keeps scoring above
threshold) no new alert is raised, and the key is re-armed once a window scores below it.
Delivery is at-least-once (a restart may resend the alerts of the last micro-batch); every
alert carries a stable `alert_id` so that a receiver can drop repeats.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from huntlab.events import TS_TYPE

if TYPE_CHECKING:
    from huntlab.config import StreamConfig

log = logging.getLogger(__name__)

ALERT_SCHEMA = pa.schema(
    [
        pa.field("alert_id", pa.string()),
        pa.field("job", pa.string()),
        pa.field("key", pa.string()),
        pa.field("window_start", TS_TYPE),
        pa.field("window_end", TS_TYPE),
        pa.field("observed", pa.float64()),
        pa.field("expected", pa.float64()),
        pa.field("score", pa.float64()),
        pa.field("detector", pa.string()),
        pa.field("explanation", pa.string()),
        pa.field("raised_at", TS_TYPE),
    ]
)


@dataclass
class Alert:
    """One anomaly worth a human's attention."""

    alert_id: str
    job: str
    key: str
    window_start: int  # microseconds since the epoch
    window_end: int
    observed: float
    expected: float
    score: float
    detector: str
    explanation: str
    raised_at: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("window_start", "window_end", "raised_at"):
            d[k] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(d[k] / 1e6))
        return d


def alerts_table(alerts: list[Alert]) -> pa.Table:
    """Alert rows with ALERT_SCHEMA."""
    cols = {f.name: [getattr(a, f.name) for a in alerts] for f in ALERT_SCHEMA}
    return pa.table(
        {
            f.name: pa.array(cols[f.name], pa.int64() if f.type == TS_TYPE else f.type).cast(f.type)
            for f in ALERT_SCHEMA
        },
        schema=ALERT_SCHEMA,
    )


class Deduplicator:
    """Keys whose anomaly is ongoing: they alert once, and again only after a quiet window."""

    def __init__(self) -> None:
        self.active: dict[str, str] = {}

    def admit(self, key: str, anomalous: bool, alert_id: str) -> bool:
        """Whether this window's result should raise an alert."""
        if not anomalous:
            self.active.pop(key, None)
            return False
        if key in self.active:
            return False
        self.active[key] = alert_id
        return True


class Sink(Protocol):
    """Where alerts go."""

    def deliver(self, alerts: list[Alert]) -> None: ...


class ConsoleSink:
    """One line per alert on the terminal running the stream processor."""

    def __init__(self, print_fn: Any = print) -> None:
        self.print = print_fn

    def deliver(self, alerts: list[Alert]) -> None:
        for a in alerts:
            j = a.to_json()
            self.print(
                f"ALERT {a.job} [{a.key}] {j['window_start']}..{j['window_end']}: observed "
                f"{a.observed:.4g}, expected {a.expected:.4g}, score {a.score:.3f} ({a.detector})"
            )


class WebhookSink:
    """HTTP POST of a JSON array of alerts; retried with exponential backoff on failure."""

    def __init__(
        self,
        url: str,
        *,
        retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url, self.retries, self.backoff_s = url, retries, backoff_s
        self.timeout_s, self.headers = timeout_s, headers or {}
        self.failed = 0

    def deliver(self, alerts: list[Alert]) -> None:
        import httpx

        body = json.dumps([a.to_json() for a in alerts]).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        for attempt in range(self.retries + 1):
            try:
                r = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
                if r.status_code < 300:
                    return
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                why = str(exc) or type(exc).__name__
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        self.failed += len(alerts)
        log.error("webhook %s did not take %d alert(s): %s", self.url, len(alerts), why)


def sinks_from_config(cfg: StreamConfig, print_fn: Any = print) -> list[Sink]:
    """The sinks configured in [stream] (console unless disabled, then every webhook)."""
    import os

    out: list[Sink] = [ConsoleSink(print_fn)] if cfg.console else []
    for hook in cfg.webhooks:
        headers = {}
        if hook.token_env and os.environ.get(hook.token_env):
            headers["Authorization"] = f"Bearer {os.environ[hook.token_env]}"
        out.append(
            WebhookSink(
                hook.url,
                retries=hook.retries,
                backoff_s=hook.backoff_s,
                timeout_s=hook.timeout_s,
                headers=headers,
            )
        )
    return out
