"""Where sw2 may write: `--out` replaces only what sw2 wrote itself, never a user's files.

Checked before any work (before any data is read, so a bad `--out` costs nothing): a path that does
not exist, an empty folder, or an older sw2 output holding nothing but the files sw2 writes there may be
replaced; a file, the working folder or one above it, a folder holding the spec or anything it reads, and
a checkpoint folder holding other files may not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sw2.errors import UserError
from sw2.spec import Spec

REQUIRED = ("model.safetensors", "model.json", "preprocess.json", "spec.yaml")  # every bundle has these
BUNDLE_FILES = REQUIRED + (  # and may have these: all that sw2 writes into a bundle
    "metrics.json",
    "history.jsonl",
    "fingerprint.json",
    "provenance.json",  # where its data came from, signed (sw2.provenance)
    "curves.png",
    "confusion.png",
    "tensorboard",
    "what_the_net_sees.png",
    "what_the_net_sees.csv",
    "what_the_net_sees.txt",
    "report.html",
    "tests.xml",
    "lr_finder.png",
    "samples.txt",
    "compress.json",  # a variant written by `sw2 compress` (sw2.ship.compress)
    "reference.json",  # the training data's statistics that `sw2 serve` measures drift against
    "model.onnx",  # `sw2 export` (sw2.ship.export)
    "export.json",
    "attack.json",  # `sw2 attack` (sw2.evaluation.attack)
    "attack_examples.png",
    "tune_leaderboard.md",  # the search that chose this spec (`sw2 tune`)
    "tune_history.png",
    "tune_importance.png",
)
DOCTOR_FILES = ("doctor.json", "label_errors.csv")  # what `sw2 doctor` writes: its findings folder
DOCTOR_WRITES = DOCTOR_FILES + ("label_errors.png",)
CHECKPOINT = "checkpoint.pt"
MANIFEST = "files.json"  # what sw2 wrote into an output folder, recorded there
REPLACE_FIX = "give --out a new or empty folder, or an older sw2 output to replace"


def check_replaceable(
    out: Path, marks: tuple[str, ...] = REQUIRED, what: str = "an sw2 bundle", writes: tuple[str, ...] = BUNDLE_FILES
) -> None:
    """Refuse (UserError) an `out` that `write_atomic` must not replace: only a path that does not exist, an
    empty folder, or a folder holding the files `marks` (`what`, an older one) and nothing but the files sw2
    `writes` there may be replaced. Never a file, a path inside a file, the working folder or one holding it."""
    path, cwd = out.resolve(), Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise UserError(f"{out}: is the working folder{'' if path == cwd else ' or holds it'}; {REPLACE_FIX}")
    if path.exists() and not path.is_dir():
        raise UserError(f"{out}: is a file, not a folder; {REPLACE_FIX}")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{out}: {blocker} is a file, not a folder; {REPLACE_FIX}")
    if not path.is_dir():
        return
    names = sorted(p.name for p in path.iterdir())
    if names and not all(m in names for m in marks):
        shown = next((n for n in names if n not in marks), names[0])
        raise UserError(f"{out}: holds files that are not {what} (e.g. {shown}); {REPLACE_FIX}")
    unknown = [n for n in names if n not in writes and n != MANIFEST and not _leftover(n)]
    ours = _manifest(path, unknown) if unknown else set()
    yours = [n for n in unknown if n not in ours]
    if yours:
        raise UserError(f"{out}: is {what}, but also holds {yours[0]}, which sw2 did not write; {REPLACE_FIX}")


def manifest(folder: Path, writes: tuple[str, ...] = BUNDLE_FILES) -> dict[str, Any]:
    """files.json for the output folder `folder` just written (`write_atomic`): the size and sha256 of each file
    whose name is not among the `writes` that sw2 always counts as its own (a task's own files)."""
    files = [p for p in sorted(folder.iterdir()) if p.name not in writes and p.is_file() and not p.is_symlink()]
    return {"wrote": {p.name: _print(p) for p in files}}


def _print(path: Path) -> list[Any]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return [path.stat().st_size, digest.hexdigest()]


def _manifest(folder: Path, names: list[str]) -> set[str]:
    """Which of `names` in `folder` sw2 wrote, as its files.json records them: a task's own files count as
    sw2's while their size and sha256 are those recorded (a crafted record cannot claim a user's later file);
    an unreadable record counts for nothing."""
    try:
        if (folder / MANIFEST).stat().st_size > 1 << 20:  # sw2 writes a name, a size and a hash per file
            return set()
        wrote = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["wrote"]
        recorded = {n: list(v) for n, v in wrote.items() if isinstance(n, str) and "/" not in n}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    found = set()
    for name in names:
        path = folder / name
        if name in recorded and path.is_file() and not path.is_symlink():  # the size first: hashing costs
            if recorded[name][:1] == [path.stat().st_size] and _print(path) == recorded[name]:
                found.add(name)
    return found


def _leftover(name: str) -> bool:
    """A temporary file of an interrupted sw2 write (".report.html.x1y2.tmp")."""
    return name.startswith(".") and ".tmp" in name


def checkpoint_dir(out: Path) -> Path:
    out = out.resolve()
    return out.with_name(out.name + ".checkpoint")


def spec_reads(spec: Spec, root: Path) -> list[tuple[str, Path]]:
    """The files and folders a run of `spec` reads, each with the field that names it."""
    found = [("the spec's folder", root)] + [(field, root / rel) for field, rel in spec.named_paths()]
    cache = spec.data.cache_dir
    return found + ([("data.cache_dir", Path(cache).expanduser())] if cache else [])


def guard_out(
    out: Path,
    spec: Spec,
    root: Path,
    marks: tuple[str, ...] = REQUIRED,
    what: str = "an sw2 bundle",
    checkpoint: bool = True,
    writes: tuple[str, ...] = BUNDLE_FILES,
) -> None:
    """Refuse, before any work, an `out` whose replacement would destroy user files: whatever
    `check_replaceable` refuses, a folder holding something the spec reads (its own folder `root`
    included), and (`checkpoint`) a checkpoint folder beside it that holds anything but a checkpoint."""
    check_replaceable(out, marks, what, writes)
    replaced = [out.resolve()] + ([checkpoint_dir(out)] if checkpoint else [])
    for field, path in spec_reads(spec, root):
        for folder in replaced:
            if folder == path.resolve() or folder in path.resolve().parents:
                raise UserError(f"{folder}: holds {field} ({path}), which this run reads; {REPLACE_FIX}")
    if checkpoint:
        _check_checkpoint_folder(checkpoint_dir(out))


def _check_checkpoint_folder(ckpt: Path) -> None:
    """Training deletes and rewrites this folder: it may hold only what sw2 keeps there."""
    if ckpt.exists() and not ckpt.is_dir():
        raise UserError(f"{ckpt}: a file where training keeps its checkpoint; move it away or give another --out")
    stray = sorted(p.name for p in ckpt.iterdir() if not is_checkpoint_file(p.name)) if ckpt.is_dir() else []
    if stray:
        raise UserError(
            f"{ckpt}: holds files that are not an sw2 checkpoint (e.g. {stray[0]}), and training keeps its "
            f"checkpoint there; move them away or give another --out"
        )


def is_checkpoint_file(name: str) -> bool:
    """Whether a name in a checkpoint folder is sw2's: the checkpoint, its temporary file, the TensorBoard logs."""
    return name in (CHECKPOINT, "tensorboard") or name.startswith(f".{CHECKPOINT}.tmp")


def bundle_out(spec: Spec, out: str | Path | None) -> Path:
    """Where `sw2 train` writes: `out`, else runs/<name>."""
    return Path(out) if out else Path("runs") / spec.name


def doctor_out(spec: Spec, out: str | Path | None) -> Path:
    """Where `sw2 doctor` writes: `out`, else runs/<name>.doctor."""
    return Path(out) if out else Path("runs") / f"{spec.name}.doctor"
