"""MNIST's IDX files (train-images-idx3-ubyte[.gz] and its labels, t10k-* as the test split): source `idx`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sw2.data import idx
from sw2.data.examples import Examples
from sw2.data.sources.base import Loaded, resolve
from sw2.errors import UserError
from sw2.plugins import SOURCES
from sw2.spec import DataSpec


@SOURCES.register("idx")
def load_idx(data: DataSpec, root: Path, target: str) -> Loaded:
    path = resolve(root, data.path or "")
    train = idx.load_pair(path, "train")
    if train is None:
        raise UserError(f"{path}: no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] pair")
    test = idx.load_pair(path, "t10k")

    def examples(pair: tuple[np.ndarray, np.ndarray], prefix: str) -> Examples:
        return Examples(target=pair[1], images=pair[0], ids=np.array([f"{prefix}:{i}" for i in range(len(pair[1]))]))

    return Loaded(examples(train, "train"), None if test is None else examples(test, "t10k"), f"IDX {path}")
