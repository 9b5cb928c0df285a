"""Fixtures of the ml area: a small, fixed sample of the shared labeled URLs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest


def stratified_sample(table: pa.Table, per_group: int, seed: int = 3) -> pa.Table:
    """Up to `per_group` rows of every (collection, label) pair, deterministically."""
    rng = np.random.default_rng(seed)
    keys = np.char.add(
        np.asarray(table["collection"].to_pylist(), dtype=str),
        np.asarray(table["label"].to_pylist(), dtype=str),
    )
    picks = []
    for k in np.unique(keys):
        idx = np.where(keys == k)[0]
        picks.append(rng.choice(idx, min(per_group, len(idx)), replace=False))
    return table.take(np.sort(np.concatenate(picks)))


@pytest.fixture(scope="session")
def urls_dir(shared_data: Path) -> Path:
    return shared_data / "urls"


@pytest.fixture(scope="session")
def url_sample(urls_dir: Path) -> pa.Table:
    """About 4,000 labeled URLs from every collection and class (url, label, collection)."""
    from huntlab.ml.data import read_collections

    return stratified_sample(read_collections(urls_dir), 500)


@pytest.fixture(scope="session")
def feature_spec(urls_dir: Path):
    from huntlab.ml.data import read_popular
    from huntlab.ml.domains import popularity_ranks
    from huntlab.ml.features import FeatureSpec

    return FeatureSpec(popular=popularity_ranks(read_popular(urls_dir)["domain"].to_pylist()))
