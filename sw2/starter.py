"""`sw2 init DATA --target COL`: a starter spec that explains itself.

Ludwig's `init_config` writes a config and AutoGluon's `fit(label=...)` decides silently; this file says in
comments what sw2 read in the data and why it chose each value: the task (from the target's values), every
column's kind with its reason (sw2.data.columns, as training judges them), the split and what each part is
for, what is left to sw2 (model and recipe), and the commands to run next. Only choices are written as
fields; the rest stays at the defaults `sw2 spec FILE` prints. An image folder or IDX folder gets a spec
without target (its classes are its sub-folders, or the IDX labels).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pandas as pd
import yaml

from sw2 import __version__
from sw2.data import idx
from sw2.data.columns import LEFT_OUT, column_kinds, infer_task, kinds_table, printable
from sw2.data.images import IMAGE_SUFFIXES, is_archive
from sw2.data.sources import read_table
from sw2.errors import UserError
from sw2.registry import did_you_mean
from sw2.spec import INPUT_KINDS, parse_spec

SMALL = 2_000  # rows below which a single 20% test split is noisy: --cv is suggested
SHOWN_CLASSES = 12
WIDTH = 110  # of a comment line


def starter_spec(data: Path, out: Path, target: str | None) -> str:
    """The text of a starter spec for `data`, to be written at `out` (its data path is relative to `out`'s
    folder); a UserError for a file sw2 cannot read or a target that is not a column."""
    if not data.exists():
        raise UserError(f"{data}: no such file or folder; give a CSV/Parquet/JSON Lines file or an image folder")
    rel = Path(os.path.relpath(data.resolve(), out.resolve().parent)).as_posix()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", data.name.split(".")[0]).strip("-.") or "run"
    head = [
        *_say(
            f"A starter spec for {data.name}, written by `sw2 init` (sw2 {__version__}). Every choice is "
            "explained beside it; the fields not written keep the defaults that `sw2 spec THIS_FILE` prints."
        ),
        f"name: {_scalar(name)}  # the bundle is written to runs/{name}",
        "data:",
        f"  path: {_scalar(rel)}  # relative to this file's folder",
    ]
    if data.is_dir() or is_archive(data):
        body = _images(data, target)
    else:
        body = _table(data, target)
    lines = [line.replace("THIS_FILE", printable(out)) for line in head + body + _next(out)]
    text = "\n".join(lines) + "\n"
    written = yaml.safe_load(text)
    fields = [line.split(":", 1)[0] for line in lines if line and line[0] not in "# "]
    if not isinstance(written, dict) or list(written) != fields:  # a name in the data wrote a field of its own
        raise UserError(f"{data}: its names would write fields of their own into the spec; rename its columns")
    parse_spec(written, str(out))  # what sw2 init writes always loads
    return text


def _table(path: Path, target: str | None) -> list[str]:
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    if target is None:
        if "label" not in columns:
            raise UserError(
                f"{path}: give the column to predict with --target, one of: {', '.join(map(printable, columns[:20]))}"
                + (" ..." if len(columns) > 20 else "")
            )
        target = "label"
    if target not in columns:
        raise UserError(f"--target {target}: not a column of {path}; {did_you_mean(target, columns)}")
    task, why = infer_task(frame[target])
    other = "regress" if task == "classify" else "classify"
    kinds = column_kinds(frame, "auto", target)
    n = len(frame)
    lines = _split(n, task, [k.name for k in kinds if k.kind == "date"])
    lines += [
        *_say(f"task: inferred from the target's values: {why}. Change it to {other} if that is what you mean."),
        f"task: {task}",
        f"target: {_scalar(target)}",
    ]
    if task == "classify":
        counts = frame[target].value_counts()
        shown = ", ".join(f"{_comment(c)} ({k})" for c, k in counts.head(SHOWN_CLASSES).items())
        more = f" and {len(counts) - SHOWN_CLASSES} more" if len(counts) > SHOWN_CLASSES else ""
        lines += _say(f"{len(counts)} classes, rows each: {shown}{more}")
        if len(counts) > 1 and counts.iloc[0] >= 3 * counts.iloc[-1]:
            lines += _say(
                "The classes are unbalanced (the largest has 3x the rows of the smallest or more): macro_f1 weighs "
                "every class equally, where accuracy is dominated by the largest; the tables show it first."
            )
            lines.append("metrics: [macro_f1, accuracy, log_loss]")
    lines += _say(
        f"The {len(kinds)} input columns, as sw2 judged them from the file's {n} rows (`sw2 spec --columns {path} "
        f"--target {target}` prints them again; training judges its training rows; ids and ignored columns are "
        "left out of the model's inputs):"
    )
    lines += ["#" + line for line in kinds_table(kinds)]  # printable: a name cannot end its comment
    lines += [f"# To override a column's kind, uncomment it (kinds: {' | '.join(INPUT_KINDS)}):", "# inputs:"]
    lines += [f"#   {_scalar(k.name)}: {'ignore' if k.kind in LEFT_OUT else k.kind}" for k in kinds[:30]]
    lines += _say(
        "model: left to sw2 (model: auto): it tries the candidates that suit a table of this size and keeps the "
        "best on the validation rows, each with its own recipe (epochs, lr, batch size). To fix them, e.g.:"
    )
    return lines + ["# model: {name: mlp}", "# train: {epochs: 30}"]


def _split(n: int, task: str, dates: list[str]) -> list[str]:
    how = "at random, stratified by class (each part keeps the class shares)" if task == "classify" else "at random"
    lines = [
        *_say(
            f"{n} rows, split {how}: 70% train the model, 10% validate it (early stopping, model choice), 20% "
            "test it once at the end (the figures the report gives). The same seed and file give the same split.",
            "  ",
        ),
        "  split:",
        "    val: 0.1",
        "    test: 0.2",
        "    seed: 0",
    ]
    if dates:
        lines += _say(
            f"{dates[0]} holds dates: if rows later in time are what the model will meet, split in time order "
            "(train on the earliest, test on the latest) by uncommenting:",
            "    ",
        )
        lines.append(f"    # by: {_scalar(dates[0])}")
    if n < SMALL:
        lines += _say(
            f"With {n} rows a 20% test split is small and its figures noisy: `sw2 train THIS_FILE --cv 5` also "
            "reports each metric's mean and spread over 5 folds.",
            "  ",
        )
    return lines


def _images(path: Path, target: str | None) -> list[str]:
    if target is not None:
        raise UserError(f"--target {target}: {path} holds images, whose classes are their folders; drop --target")
    if idx.is_idx_folder(path):
        what = "an IDX folder (train-images-idx3-ubyte and its labels; t10k-* files, if any, are its test split)"
        classes: list[str] = []
    elif is_archive(path):
        what = "an archive of an image folder (one sub-folder per class; sw2 unpacks it once into its cache)"
        classes = []
    else:
        top = path / "train" if (path / "train").is_dir() else path
        what = "an image folder: one sub-folder per class" + (" (train/ and test/)" if top != path else "")
        folders = sorted(p for p in top.iterdir() if p.is_dir())
        classes = [f"{_comment(p.name)} ({sum(1 for f in p.rglob('*') if f.suffix.lower() in IMAGE_SUFFIXES)})"
                   for p in folders]  # fmt: skip
        if not classes:
            raise UserError(f"{path}: holds no sub-folders; put each class's images in a folder named after it")
    test = "the test/ folder is the test split" if (path / "test").is_dir() else "20% are held out to test it once"
    lines = [
        *_say(f"{what}. 10% of the training images validate the model (early stopping, model choice); {test}.", "  "),
        "  split:",
        "    val: 0.1",
        "    test: 0.2",
        "    seed: 0",
        "# task: classify (a class per image; images have no target column, so none is named).",
        "task: classify",
    ]
    if classes:
        more = f" and {len(classes) - SHOWN_CLASSES} more" if len(classes) > SHOWN_CLASSES else ""
        lines += _say(f"{len(classes)} classes (images each): {', '.join(classes[:SHOWN_CLASSES])}{more}")
    lines += [
        "# model: left to sw2 (model: auto): it picks a network for images of this size, with its own recipe.",
        "# augment: {flip: true}  # uncomment where a mirrored image shows the same class",
    ]
    return lines


def _next(out: Path) -> list[str]:
    return [
        "# Next:",
        f"#   sw2 check {printable(out)}    the pre-flight checks: is the data learnable, the setup sound (seconds)",
        f"#   sw2 train {printable(out)}    train, test and write the bundle with its report.html",
    ]


def _say(text: str, indent: str = "") -> list[str]:
    """`text` as comment lines of at most WIDTH characters (printable: nothing of the data ends a comment)."""
    wrapped = textwrap.wrap(printable(text), WIDTH - len(indent) - 2, break_on_hyphens=False)
    return [f"{indent}# {line}" for line in wrapped]


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain where it reads back as the same string, else double-quoted with every
    character that does not print escaped (YAML breaks a line at \\x85 and \\u2028, which JSON leaves raw)."""
    if re.fullmatch(r"[A-Za-z0-9_./][A-Za-z0-9_./ -]*[A-Za-z0-9_./]|[A-Za-z0-9_]", value):
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    quoted = json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                   for c in quoted)  # fmt: skip


def _comment(value: object) -> str:
    """`value` on one comment line, printable."""
    if isinstance(value, float) and pd.isna(value):
        return "(missing)"
    return printable(" ".join(str(value).split()))
