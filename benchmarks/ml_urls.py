"""URL featurization and scoring speed against a per-row Python reference, side by side.

- huntlab-features : FeatureSpec.compute (DuckDB SQL over Arrow, PSL once per distinct host)
- python-per-row   : the same canonicalization with urllib, per URL in a Python loop, plus the
                     public-suffix lookup per URL and 10 of the lexical features (a lower bound of
                     what a hand-written loop over all 52 features would cost)
- huntlab-score    : features + n-grams + the blend model's prediction (URLs/s end to end)

The quality evaluation (grouped, random, cross-collection) is `huntlab ml evaluate`.

Usage: python -m benchmarks.ml_urls [--rows 200000] [--source ../shared/data/urls]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]


def _entropy(s: str) -> float:
    if not s:
        return 0.0
    n = len(s)
    return -sum(s.count(c) / n * math.log(s.count(c) / n) for c in set(s))


def python_per_row(urls: list[str]) -> list[list[float]]:
    """The reference: one URL at a time in Python."""
    from huntlab.ml.domains import _psl

    psl = _psl(False)
    out = []
    for raw in urls:
        s = raw.strip().strip("\"' ").replace("&amp;", "&")
        parts = urlsplit(s if "://" in s else "http://" + s)
        host = (parts.hostname or "").removeprefix("www.")
        path, query = unquote(parts.path), unquote(parts.query)
        reg = psl.privatesuffix(host) or host
        sub = host[: -len(reg)].rstrip(".") if reg and host != reg else ""
        out.append(
            [
                host.count(".") + 1,
                sub.count(".") + 1 if sub else 0,
                sum(c.isdigit() for c in host) / max(len(host), 1),
                host.count("-"),
                _entropy(host),
                len([p for p in path.split("/") if p]),
                sum(c.isdigit() for c in path) / max(len(path), 1),
                _entropy(path.lower()),
                query.count("&") + 1 if query else 0,
                float("http" in (path + query).lower()),
            ]
        )
    return out


def main() -> None:
    """Time each variant once over the same URLs and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--source", type=Path, default=ROOT / ".." / "shared" / "data" / "urls")
    args = ap.parse_args()

    import numpy as np

    from huntlab.ml.data import read_collections, read_popular
    from huntlab.ml.domains import popularity_ranks
    from huntlab.ml.features import FeatureSpec
    from huntlab.ml.models import UrlClassifier

    table = read_collections(args.source)
    table = table.slice(0, min(args.rows, table.num_rows))
    urls = table["url"]
    spec = FeatureSpec(popular=popularity_ranks(read_popular(args.source)["domain"].to_pylist()))
    n = table.num_rows
    rows = []
    t0 = time.perf_counter()
    feats = spec.compute(urls)
    rows.append(("huntlab-features", time.perf_counter() - t0))
    t0 = time.perf_counter()
    python_per_row(urls.to_pylist())
    rows.append(("python-per-row (10 features)", time.perf_counter() - t0))
    train = np.arange(0, n, 4)
    model = UrlClassifier(kind="blend", spec=spec, seed=7)
    labels = np.asarray(table["label"].to_pylist(), dtype=object)
    model.fit_features(feats.take(train), labels[train])
    t0 = time.perf_counter()
    model.predict_proba(urls)
    rows.append(("huntlab-score (blend, end to end)", time.perf_counter() - t0))
    base = rows[0][1]
    print(f"\n{n:,} URLs from {args.source}")
    print(f"{'variant':<36} {'seconds':>9} {'URLs/s':>11} {'vs huntlab-features':>20}")
    for name, secs in rows:
        print(f"{name:<36} {secs:>9.2f} {n / secs:>11,.0f} {secs / base:>19.2f}x")


if __name__ == "__main__":
    main()
