"""Writing one file so that an older one is replaced whole or not at all, and nothing else is written; the
user's cache folder.

The new content goes to a fresh temporary file beside the target (created exclusively: a planted link
of a guessable name cannot redirect it) and is renamed over the target; `os.replace` replaces a link
at the target itself, never the file it points to. The file gets the mode any tool's new file gets (0o666
less the umask): the temporary file is created 0600, which suits secrets, and sw2 writes none through here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_file(path: Path, data: str | bytes) -> None:
    """`data` (text as UTF-8) into `path`, atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # POSIX modes (Windows: the folder's ACLs apply)
                os.fchmod(f.fileno(), 0o666 & ~umask())
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def umask() -> int:
    """The process's umask: read from /proc/self/status where Linux gives it, since setting it to read it
    back (elsewhere) briefly changes it for every thread."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def cache_dir() -> Path:
    """The user's sw2 cache folder: $SW2_CACHE, else $XDG_CACHE_HOME/sw2, else ~/.cache/sw2 (not created)."""
    root = os.environ.get("SW2_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sw2"
    return Path(root)


def within(path: Path, folder: Path) -> bool:
    """`path` and, for a folder, everything below it lie inside `folder` once links are followed (a link loop
    counts as outside)."""
    folder = folder.resolve()
    try:
        if not path.resolve().is_relative_to(folder):
            return False
        below = path.rglob("*") if path.is_dir() else []
        return all(p.resolve().is_relative_to(folder) for p in below if p.is_symlink())
    except (OSError, RuntimeError):  # a link loop
        return False
