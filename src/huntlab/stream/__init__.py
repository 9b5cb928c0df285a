"""Streaming: windows over the upstream log, per-key anomaly detectors, alerts, NAB evaluation."""

from __future__ import annotations

from huntlab.stream.context import ContextNovelty, RestingContext
from huntlab.stream.detectors import (
    Detector,
    Ensemble,
    HoltEWMA,
    KNNShape,
    SeasonalMAD,
    make_detector,
)
from huntlab.stream.job import StreamJob, stream_job

__all__ = [
    "ContextNovelty",
    "Detector",
    "Ensemble",
    "HoltEWMA",
    "KNNShape",
    "RestingContext",
    "SeasonalMAD",
    "StreamJob",
    "make_detector",
    "stream_job",
]
