"""Deterministic, stratified splits from a seed."""

from __future__ import annotations

import numpy as np


def split_indices(y: np.ndarray, fractions: list[float], seed: int, stratify: bool) -> list[np.ndarray]:
    """Split range(len(y)) into len(fractions)+1 index arrays: the fractions, then the rest.

    With `stratify`, each class is split in the same proportions (every class keeps at least one
    example in the rest part).
    """
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for members in groups:
        members = rng.permutation(members)
        start = 0
        for i, frac in enumerate(fractions):
            n = int(round(frac * len(members)))
            n = min(n, len(members) - start - 1) if stratify else n
            parts[i].append(members[start : start + max(n, 0)])
            start += max(n, 0)
        parts[-1].append(members[start:])
    return [np.sort(np.concatenate(p)) for p in parts]
