"""Examples: raw rows or images with their target, before any encoding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Examples:
    """Either table columns (`frame`) or images (`images`, N x C x H x W uint8), plus the raw target."""

    target: np.ndarray
    frame: pd.DataFrame | None = None
    images: np.ndarray | None = None
    ids: np.ndarray | None = None  # file names or row numbers, for reports

    def __post_init__(self) -> None:
        if self.ids is None:
            self.ids = np.arange(len(self.target)).astype(str)

    def __len__(self) -> int:
        return len(self.target)

    def take(self, idx: np.ndarray) -> Examples:
        return Examples(
            target=self.target[idx],
            frame=None if self.frame is None else self.frame.iloc[idx],  # keeps the file's row index
            images=None if self.images is None else self.images[idx],
            ids=self.ids[idx],
        )

    def join(self, other: Examples) -> Examples:
        """These examples followed by `other` (same kind of inputs)."""
        return Examples(
            target=np.concatenate([self.target, other.target]),
            frame=None if self.frame is None else pd.concat([self.frame, other.frame]),
            images=None if self.images is None else np.concatenate([self.images, other.images]),  # type: ignore[list-item]
            ids=np.concatenate([self.ids, other.ids]),  # type: ignore[list-item]
        )

    def row_hashes(self) -> np.ndarray:
        """One uint64 hash per example over its inputs (not its target)."""
        if self.images is not None:
            flat = self.images.reshape(len(self), -1)
            return pd.util.hash_array(np.array([r.tobytes() for r in flat], dtype=object))
        return pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
