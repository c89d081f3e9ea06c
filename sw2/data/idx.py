"""IDX files (the MNIST format): big-endian header, then uint8 data; optionally gzipped."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from sw2.errors import UserError


def read_idx(path: Path) -> np.ndarray:
    """A uint8 IDX file (gzipped if its name ends in .gz) as an array; a damaged file is a one-line error."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, OSError, zlib.error) as err:  # truncated or not gzip at all
        raise UserError(f"{path}: cannot read the gzipped IDX file ({err}); download or copy it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path}: not a uint8 IDX file (bad magic number); give MNIST-format IDX files")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UserError(f"{path}: IDX file is truncated ({len(raw)} bytes, shorter than its header); download it again")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(
            f"{path}: IDX file is truncated ({data.size} bytes of data for shape {dims}); download it again"
        )
    return data.reshape(dims)


def write_idx(path: Path, data: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (the inverse of `read_idx`, for tests and benchmarks)."""
    header = bytes([0, 0, 0x08, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    path.write_bytes(header + np.ascontiguousarray(data, dtype=np.uint8).tobytes())


def find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def is_idx_folder(folder: Path) -> bool:
    return folder.is_dir() and find(folder, "train-images-idx3-ubyte") is not None


def load_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(images N x 1 x H x W, labels N) for prefix 'train' or 't10k', or None if absent."""
    img, lab = find(folder, f"{prefix}-images-idx3-ubyte"), find(folder, f"{prefix}-labels-idx1-ubyte")
    if img is None or lab is None:
        return None
    images, labels = read_idx(img), read_idx(lab)
    if len(images) != len(labels):
        raise UserError(f"{img}: {len(images)} images but {len(labels)} labels in {lab.name}")
    return images[:, None], labels.astype(np.int64)
