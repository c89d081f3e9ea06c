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
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]  # no rows: empty parts


def fold_ids(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A stratified fold number 0..k-1 for each example: each class is dealt round the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(y), np.int64)
    start = 0
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        folds[members] = (np.arange(len(members)) + start) % k
        start += len(members)  # the next class starts where this one ended, so the folds stay level
    return folds
