"""Train/validation/test splits: grouped by registered domain (the honest one) or at random."""

from __future__ import annotations

import numpy as np

from huntlab.errors import InputError

SPLITS = ("grouped", "random")


def split_indices(
    groups: np.ndarray,
    labels: np.ndarray,
    how: str = "grouped",
    fractions: tuple[float, float] = (0.2, 0.2),
    seed: int = 7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, validation and test; grouped keeps each domain on one side only."""
    n = len(labels)
    val_frac, test_frac = fractions
    if how == "random":
        from sklearn.model_selection import train_test_split

        idx = np.arange(n)
        rest, test = train_test_split(idx, test_size=test_frac, stratify=labels, random_state=seed)
        train, val = train_test_split(
            rest, test_size=val_frac / (1 - test_frac), stratify=labels[rest], random_state=seed
        )
        return np.sort(train), np.sort(val), np.sort(test)
    if how != "grouped":
        raise InputError(f"unknown split {how!r}", f"Use one of: {', '.join(SPLITS)}")
    # Hash each domain to a stable uniform number: the same domain always lands on the same side,
    # whatever the other rows are (so a later evaluation set stays disjoint by construction).
    u = domain_unit(groups, seed)
    test = np.where(u < test_frac)[0]
    val = np.where((u >= test_frac) & (u < test_frac + val_frac))[0]
    train = np.where(u >= test_frac + val_frac)[0]
    return train, val, test


def domain_unit(groups: np.ndarray, seed: int = 7) -> np.ndarray:
    """A stable number in [0, 1) per domain (hash of seed and domain), vectorised in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(groups.tolist() if isinstance(groups, np.ndarray) else groups, pa.string())
    uniq = pc.unique(arr)
    import hashlib

    vals = np.array(
        [
            int.from_bytes(hashlib.blake2b(f"{seed}:{d}".encode(), digest_size=8).digest(), "big")
            for d in uniq.to_pylist()
        ],
        dtype=np.float64,
    ) / float(2**64)
    return vals[pc.index_in(arr, value_set=uniq).to_numpy()]
