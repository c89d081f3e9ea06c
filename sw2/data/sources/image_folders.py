"""An image folder (one sub-folder per class, or train/ and test/ holding such folders), or a .tar.gz of one:
source `images`."""

from __future__ import annotations

from pathlib import Path

from sw2.data.examples import Examples
from sw2.data.images import extract, is_archive, load_folder
from sw2.data.sources.base import Loaded, resolve
from sw2.files import cache_dir
from sw2.plugins import SOURCES
from sw2.spec import DataSpec


@SOURCES.register("images")
def load_images(data: DataSpec, root: Path, target: str) -> Loaded:
    path = resolve(root, data.path or "")
    cache = Path(data.cache_dir).expanduser() if data.cache_dir else cache_dir()
    if is_archive(path):
        path = extract(path, cache)

    def examples(folder: Path) -> Examples:
        images, labels, ids = load_folder(folder, cache)
        return Examples(target=labels, images=images, ids=ids)

    if (path / "train").is_dir():
        test = examples(path / "test") if (path / "test").is_dir() else None
        return Loaded(examples(path / "train"), test, f"image folder {path}")
    return Loaded(examples(path), None, f"image folder {path}")
