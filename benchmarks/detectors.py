"""Detector cost: microseconds per observation (score then learn) and checkpoint size per key.

Each detector streams over real NAB series (a daily-seasonal taxi count, a noisy tweet volume,
a machine temperature), as the stream processor would per key; reported: us per observation,
the pickled state's size and the time to pickle it after the run, each with its ratio to
`robust`, the stream processor's default (the reference run, in the same table).

Usage: python -m benchmarks.detectors [--rows 6000]
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import numpy as np

from huntlab.stream.detectors import make_detector
from huntlab.stream.nab import load_corpus

SERIES = ["nyc_taxi", "Twitter_volume_AAPL", "machine_temperature"]
NAMES = ["robust", "seasonal", "ewma", "knn", "context", "context-rest", "ensemble"]
REFERENCE = "robust"


def measure(name: str, data: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, int, float]:
    """(us per observation, pickled bytes per key, ms to pickle one key) over the series."""
    spent, rows, size, dump = 0.0, 0, 0, 0.0
    for t, x in data:
        det = make_detector(name, seed=0)
        start = time.perf_counter()
        for ti, xi in zip(t.tolist(), x.tolist()):
            det.score_one(ti, xi)
            det.learn_one(ti, xi)
        spent += time.perf_counter() - start
        rows += len(x)
        start = time.perf_counter()
        size += len(pickle.dumps(det))
        dump += time.perf_counter() - start
    return 1e6 * spent / rows, size // len(data), 1e3 * dump / len(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/nab"))
    ap.add_argument("--rows", type=int, default=6000, help="Rows per series.")
    args = ap.parse_args()
    corpus = load_corpus(args.data, SERIES)
    data = [
        (s.timestamps.astype("int64").astype(float)[: args.rows], s.values[: args.rows])
        for s in corpus
    ]
    results = {n: measure(n, data) for n in NAMES}
    ref = results[REFERENCE]
    print(f"{len(data)} series x {args.rows} rows; ratios against '{REFERENCE}'")
    print(
        f"{'detector':12} {'us/obs':>8} {'ratio':>6} {'state KB':>9} {'ratio':>6} {'pickle ms':>9}"
    )
    for n, (us, size, ms) in results.items():
        print(
            f"{n:12} {us:8.1f} {us / ref[0]:6.2f} {size / 1024:9.1f} {size / ref[1]:6.2f} {ms:9.2f}"
        )


if __name__ == "__main__":
    main()
