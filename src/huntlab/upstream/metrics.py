"""Prometheus-style counters and a latency histogram for the collector, in plain Python."""

from __future__ import annotations

import threading
from collections import Counter

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Counters by name and a request-latency histogram; rendered in Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.latency_buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def add_reasons(self, reasons: Counter[str]) -> None:
        with self._lock:
            self.reasons.update(reasons)

    def observe(self, seconds: float) -> None:
        with self._lock:
            i = next((k for k, b in enumerate(BUCKETS) if seconds <= b), len(BUCKETS))
            self.latency_buckets[i] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def render(self) -> str:
        """The metrics page (text/plain; version=0.0.4)."""
        out = []
        with self._lock:
            for name, help_text in (
                ("accepted", "events accepted and durably written"),
                ("rejected", "events rejected by validation"),
                ("quarantined", "records written to quarantine"),
                ("duplicate_batches", "batches resent with an already acknowledged id"),
                ("requests", "requests answered"),
                ("bad_requests", "requests refused with a 4xx"),
            ):
                metric = f"huntlab_upstream_{name}_total"
                out += [
                    f"# HELP {metric} {help_text}",
                    f"# TYPE {metric} counter",
                    f"{metric} {self.counters[name]}",
                ]
            metric = "huntlab_upstream_rejected_by_reason_total"
            out += [f"# HELP {metric} rejected events by reason", f"# TYPE {metric} counter"]
            for reason, n in sorted(self.reasons.items()):
                label = reason.replace("\\", "\\\\").replace('"', '\\"')
                out.append(f'{metric}{{reason="{label}"}} {n}')
            metric = "huntlab_upstream_request_seconds"
            out += [
                f"# HELP {metric} time from request to acknowledgement",
                f"# TYPE {metric} histogram",
            ]
            cumulative = 0
            for bound, n in zip(BUCKETS, self.latency_buckets, strict=False):
                cumulative += n
                out.append(f'{metric}_bucket{{le="{bound}"}} {cumulative}')
            out.append(f'{metric}_bucket{{le="+Inf"}} {self.latency_count}')
            out.append(f"{metric}_sum {self.latency_sum:.6f}")
            out.append(f"{metric}_count {self.latency_count}")
        return "\n".join(out) + "\n"
