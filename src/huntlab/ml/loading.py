"""Put the shared labeled URL collections and the popular-domain list into managed datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from huntlab.connectors.base import connector_for
from huntlab.ml.data import read_collections, read_popular

if TYPE_CHECKING:
    from huntlab.workspace import Workspace


def load_shared_urls(
    ws: Workspace,
    source: Path,
    output: str = "urls",
    collections: list[str] | None = None,
    popular: str | None = "popular_domains",
    sample: int | None = None,
    seed: int = 7,
) -> dict[str, int]:
    """Write labeled URLs (url, label, collection) and Tranco ranks; one atomic commit each."""
    source = source if source.is_absolute() else (Path.cwd() / source)
    table = read_collections(source, collections)
    if sample and sample < table.num_rows:
        rng = np.random.default_rng(seed)
        table = table.take(np.sort(rng.choice(table.num_rows, sample, replace=False)))
    counts = {output: table.num_rows}
    connector_for(ws.ensure_managed(output)).write(table, "overwrite")
    ws.store.touch_dataset(output)
    if popular:
        ranks = read_popular(source)
        connector_for(ws.ensure_managed(popular)).write(ranks, "overwrite")
        ws.store.touch_dataset(popular)
        counts[popular] = ranks.num_rows
    return counts
