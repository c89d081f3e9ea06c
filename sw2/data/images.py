"""Image decoding: files -> uint8 arrays, decoded once and cached as .npy (never pickled)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sw2.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def decode(path: Path, size: tuple[int, int] | None = None, channels: int | None = None) -> np.ndarray:
    """One image file as C x H x W uint8; resized to `size` (H, W) and converted to `channels` if given."""
    try:
        with Image.open(path) as im:
            return to_array(im, size, channels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: cannot decode image ({err}); remove or replace the file") from None


def to_array(im: Image.Image, size: tuple[int, int] | None = None, channels: int | None = None) -> np.ndarray:
    """An opened image as C x H x W uint8, resized and converted as `decode` says (PIL's errors propagate)."""
    if channels is None:
        channels = 1 if im.mode in ("L", "1", "I;16", "I") else 3
    im = im.convert("L" if channels == 1 else "RGB")
    if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


UNLABELLED = "(unlabelled)"  # the one class of images that lie directly in a folder, without class sub-folders


def class_folders(root: Path) -> list[tuple[str, list[Path]]]:
    """(class name, image files) for each sub-folder of root, sorted; empty classes are an error. Images that
    lie in root itself, without sub-folders, are one class: UNLABELLED (a task that needs classes refuses it)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if folders and loose:
        raise UserError(
            f"{root}: {len(loose)} images ({loose[0].name}, ...) lie beside the class folders "
            f"({folders[0].name}, ...); move them into a class folder or out of {root}"
        )
    if not folders:
        if loose:
            return [(UNLABELLED, loose)]
        raise UserError(f"{root}: no images and no class sub-folders; lay images out as {root}/<class>/<image>")
    out = []
    for folder in folders:
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{folder}: class folder has no images; add images or remove the folder")
        out.append((folder.name, files))
    return out


def _cache_key(files: list[Path]) -> str:
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_folder(root: Path, cache_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode every image under root/<class>/ into (images N x C x H x W, labels, file ids); cached."""
    classes = class_folders(root)
    files = [f for _, fs in classes for f in fs]
    labels = np.array([name for name, fs in classes for _ in fs], dtype=object)
    ids = np.array([str(f.relative_to(root)) for f in files], dtype=object)
    key = _cache_key(files)
    npy, meta = cache_dir / f"images-{key}.npy", cache_dir / f"images-{key}.json"
    if npy.exists() and meta.exists():
        return np.load(npy, allow_pickle=False), labels, ids
    bad: list[str] = []  # every unreadable file is reported at once, not only the first
    first = None
    for f in files:
        try:
            first = decode(f)
            break
        except UserError as err:
            bad.append(str(err))
    if first is None:
        raise UserError(f"{root}: none of the {len(files)} images can be decoded ({bad[0]})")
    size, channels = first.shape[1:], first.shape[0]
    images = np.empty((len(files), channels, *size), dtype=np.uint8)

    def put(i: int) -> None:
        try:
            images[i] = decode(files[i], size, channels)
        except UserError as err:
            bad.append(str(err))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        list(pool.map(put, range(len(bad), len(files))))
    if len(bad) == 1:
        raise UserError(bad[0])
    if bad:
        names = sorted(b.split(": cannot decode")[0] for b in bad)
        shown = "; ".join(names[:5]) + (f"; and {len(names) - 5} more" if len(names) > 5 else "")
        raise UserError(
            f"{root}: {len(bad)} of {len(files)} images cannot be decoded ({shown}); remove or replace them"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, images, allow_pickle=False)
    os.replace(tmp, npy)
    meta.write_text(json.dumps({"root": str(root), "n": len(files)}))
    return images, labels, ids


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, cache_dir: Path) -> Path:
    """Unpack a tar archive once into the cache (members outside it are refused); returns its root folder."""
    st = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
    dest = cache_dir / f"extracted-{key}"
    if not dest.exists():
        tmp = cache_dir / f".extracting-{key}.{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as err:
            shutil.rmtree(tmp, ignore_errors=True)
            reason = " ".join(str(err).split())  # tarfile's messages span several lines
            raise UserError(f"{archive}: cannot unpack archive ({reason}); check the file") from None
        os.replace(tmp, dest)
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


GRID_SCALE = 2  # each pixel drawn as GRID_SCALE x GRID_SCALE in a mosaic


def grid_png(images: np.ndarray, cols: int = 8) -> bytes:
    """uint8 images (n x C x H x W) as one PNG mosaic, `cols` a row, a pixel between tiles."""
    n, c, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    mosaic = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 255, np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        mosaic[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = img.transpose(
            1, 2, 0
        )
    pic = Image.fromarray(mosaic[..., 0] if c == 1 else mosaic, "L" if c == 1 else "RGB")
    pic = pic.resize((pic.width * GRID_SCALE, pic.height * GRID_SCALE), Image.NEAREST)
    buf = io.BytesIO()
    pic.save(buf, format="PNG")
    return buf.getvalue()


def png_file(image: np.ndarray) -> bytes:
    """One uint8 image (C x H x W) as a PNG file's bytes."""
    buf = io.BytesIO()
    Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(buf, format="PNG")
    return buf.getvalue()
