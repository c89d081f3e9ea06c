"""What each input column is, decided in one place: number, category, text, date, id or ignored, each with
its reason; and what the task is when the spec leaves it to sw2 (`infer_task`).

The spec's `inputs:` mapping overrides the columns it names; every other column is judged from the training
rows: a date when most values are shaped as dates and parse as one (not numbers, nor numbers with thousands
separators), text when `looks_like_text` says so, an id when it counts rows (whole numbers unique per row and
in order, from near 0 or 1 or under an id's name: not years 1980..2019) or is hash-like (UUIDs, hex digests)
or a key of unique strings in order, a number when its values are numbers, else a category. Ids and ignored
columns are left out of the model's inputs. What is printed of the data (names, values) is `printable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.cells import cell_len

from sw2 import log
from sw2.data.dates import parse_dates
from sw2.data.encode import looks_like_text
from sw2.errors import UserError
from sw2.spec import AUTO_TASKS, Spec, parse_spec

KINDS = ("number", "category", "text", "date", "id", "ignored")
LEFT_OUT = ("id", "ignored")  # kinds the model never reads
MIN_ROWS = 20  # fewer values than this tell too little to call a column an id or a date
HASH = re.compile(
    r"^(?:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"  # a UUID
    r"|[0-9a-f]{12,}"  # a hex digest
    r"|(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,})$",  # a token of letters and digits
    re.IGNORECASE,
)

ID_NAME = re.compile(  # id, user_id, row-number, UserId, "Unnamed: 0" (pandas' name for a saved index)
    r"(?:^|[^a-z])(?:id|key|idx|index|row|rownum|row_?number)$|(?-i:[a-z](?:Id|ID|Key|Index))$|^unnamed: ?0$",
    re.IGNORECASE,
)
GROUPED_NUMBER = re.compile(r"-?\d{1,3}(?:[,.]\d{3})+(?:[.,]\d+)?")  # a number with thousands separators
DATE_SHAPE = re.compile(  # day, month and year apart (2020-01-02, 2/1/20, 02.01.2020), a year-month, a month's name
    r"\d[-/.]\d{1,2}[-/.]\d|\d{4}-\d{2}(?!\d)|(?<![A-Za-z])(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
    re.IGNORECASE,
)


@dataclass
class ColumnKind:
    """One input column: its kind (one of KINDS) and why; a column judged to hold dates brings its values as
    judging parsed them (`dates`: UTC timestamps on the column's index) and their format, so that fitting the
    encoder on the same rows does not parse them again."""

    name: str
    kind: str
    reason: str
    dates: pd.Series | None = field(default=None, repr=False, compare=False)
    date_format: str | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "reason": self.reason}


def column_kinds(frame: pd.DataFrame, inputs: str | dict[str, str], target: str) -> list[ColumnKind]:
    """The kind of every column of the training `frame` but `target`: the spec's `inputs` where it names the
    column ("ignore" becomes ignored), else judged from the values (see the module's docstring)."""
    declared = inputs if isinstance(inputs, dict) else {}
    missing = [c for c in declared if c not in frame.columns]
    if missing:
        cols = ", ".join(map(printable, frame.columns[:12]))
        raise UserError(f"inputs: column '{printable(missing[0])}' is not in the data; columns are {cols}")
    out = []
    for name in frame.columns:
        if str(name) == target:
            continue
        if str(name) in declared:
            kind = declared[str(name)]
            kind = "ignored" if kind == "ignore" else kind
            out.append(ColumnKind(str(name), kind, f"inputs: {declared[str(name)]}"))
        else:
            kind, reason, *parsed = _judged(frame[name])
            out.append(ColumnKind(str(name), kind, reason, *parsed))
    return out


def _judged(col: pd.Series) -> tuple[str, str] | tuple[str, str, pd.Series, str]:
    """(kind, reason) of a column the spec leaves to sw2; a column of date strings adds its values parsed (NaT
    where missing) and their format."""
    values = col.dropna()
    if not len(values):
        return "number", "empty in every training row (filled with 0)"
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        if _row_number(values, str(col.name)):
            return "id", "unique per row and in order (a row number)"
        return "number", "numbers"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "date", "dates"
    strs = values.astype(str)
    if _may_be_dates(strs) and parse_dates(strs.head(200))[0].notna().mean() >= 0.9:  # a sample first: cheap
        parsed, fmt = parse_dates(strs)
        if parsed.notna().mean() >= 0.9:
            return "date", f"dates (e.g. '{strs.iloc[0]}')", parsed.reindex(col.index), fmt
    if looks_like_text(col):
        return "text", "free text: mostly distinct values of several words"
    numbers = pd.to_numeric(strs, errors="coerce")
    if numbers.notna().mean() >= 0.9:
        return "number", "numbers"
    if strs.str.fullmatch(GROUPED_NUMBER).mean() >= 0.9:
        return "category", f"numbers with thousands separators (e.g. '{strs.iloc[0]}'), left as text by reading"
    if len(strs) >= MIN_ROWS and strs.is_unique:
        if strs.str.fullmatch(HASH).mean() >= 0.9:
            return "id", f"hash-like, unique per row (e.g. '{strs.iloc[0][:40]}')"
        if strs.is_monotonic_increasing or strs.is_monotonic_decreasing:
            return "id", "unique per row and in order (a key)"
    return "category", f"{strs.nunique()} distinct values"


def _row_number(values: pd.Series, name: str) -> bool:
    """Whole numbers, unique per row and in order, that count rows: from near 0 or 1 and covering at least half
    their range (a training split holds most rows of the file), or under an id's name (`ID_NAME`). Years
    1980..2019 or any measurement that happens to rise are numbers."""
    if len(values) < MIN_ROWS or pd.api.types.is_bool_dtype(values) or not values.is_unique:
        return False
    if not (values.is_monotonic_increasing or values.is_monotonic_decreasing):
        return False
    numbers = values.astype(float)
    if not bool((numbers % 1 == 0).all()):
        return False
    low, span = float(numbers.min()), float(numbers.max() - numbers.min() + 1)
    counts = 0 <= low <= 1 + 0.05 * span and len(values) >= 0.5 * span
    return bool(counts or ID_NAME.search(name))


def _may_be_dates(strs: pd.Series) -> bool:
    """Strings a date parser may read: digits and at least one separator, of a date's length (names of days or
    months alone are categories), shaped as dates (DATE_SHAPE) and none a number with thousands separators."""
    sample = strs.head(200)
    if not (sample.str.fullmatch(r"[\dT:/.\-+ ,A-Za-z]{6,40}").mean() >= 0.9 and sample.str.count(r"\d").min() >= 4):
        return False
    if sample.str.fullmatch(GROUPED_NUMBER).any():  # 1,037.5 or 1.037,00: a number, not the year 2037
        return False
    return bool(sample.str.contains(DATE_SHAPE).mean() >= 0.9)


def printable(value: object) -> str:
    """`value` as text on one line with every character that does not print escaped (\\r, \\x85, \\u2028, ...):
    what a file's column names and values become in a terminal, a log line or a YAML comment, none of which they
    may end or rewrite."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def kinds_table(kinds: list[ColumnKind] | list[dict[str, Any]]) -> list[str]:
    """One aligned line per column: name, kind, reason (printable: a name never ends the line); padded by
    display width (a CJK character takes two columns of a terminal)."""
    rows = [k if isinstance(k, dict) else k.to_json() for k in kinds]
    cells = [(printable(r["name"]), printable(r["kind"]), printable(r["reason"])) for r in rows]
    width = max((cell_len(name) for name, _, _ in cells), default=0)
    return [f"  {name}{' ' * (width - cell_len(name))}  {kind:<8}  {why}" for name, kind, why in cells]


# ---- the task ---------------------------------------------------------------------------------------------
REGRESS_DISTINCT = 20  # more distinct numbers than this: a quantity to regress, not classes


def infer_task(target: pd.Series) -> tuple[str, str]:
    """("classify" or "regress", why): numbers with many distinct values are regressed, anything else is
    classified."""
    values = target.dropna()
    name = f"target '{printable(target.name)}'" if target.name is not None else "the target"
    numbers = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not len(values) or numbers.isna().any():
        return "classify", f"{name} has {distinct} distinct values, not all numbers"
    whole = bool((numbers.astype(float) % 1 == 0).all())
    if distinct > REGRESS_DISTINCT or (not whole and distinct > 10):
        return "regress", f"{name} has {distinct} distinct numbers"
    return "classify", f"{name} has {distinct} distinct {'whole ' if whole else ''}numbers: classes"


def wrong_task(values: Any, target: str, task: str) -> str | None:
    """Advice when `task` (one with classes) was asked of a `target` column whose `values` look like a
    quantity, else None."""
    inferred, why = infer_task(pd.Series(values, name=target))
    if task == "classify" and inferred == "regress":
        return f"{why}: use task: regress (task: classify makes each distinct number a class)"
    return None


def with_task(spec: Spec, task: str, target: str | None = None) -> Spec:
    """`spec` with its task (and `target`) set, the rest checked against them as parsing checks a spec (e.g.
    its metrics: must be the task's own)."""
    raw = {**spec.model_dump(mode="json", exclude_unset=True), "task": task}
    return parse_spec({**raw, "target": target} if target is not None else raw, f"the spec (task: {task})")


def resolve(spec: Spec, root: Path) -> Spec:
    """The spec with what it leaves to the data decided: under `task: auto` the task (from the target
    column, with a line saying why), and for a table without `target:` the target: its `label` column, or a
    UserError naming the columns to choose from."""
    from sw2.data.sources import detect, load, read_table
    from sw2.data.sources import resolve as resolve_path

    named_target = "target" in spec.model_fields_set
    if spec.task != "auto" and (named_target or spec.task not in AUTO_TASKS["table"]):  # nothing left to decide
        return spec
    source = detect(spec.data, root) if spec.data.source != "text" else "text"
    if source in ("csv", "parquet"):
        path = resolve_path(root, spec.data.path or "")
        frame = read_table(path, spec.data.sep, spec.data.encoding)
        if spec.target not in frame.columns:
            cols = ", ".join(map(printable, frame.columns[:20]))
            if named_target:
                raise UserError(f"{path}: no column '{spec.target}' for the target; set target: to one of {cols}")
            raise UserError(
                f"{path}: the spec names no target: and the data has no '{spec.target}' column; set target: to the "
                f"column to predict, one of {cols}"
            )
        if not named_target:
            log.info(f"sw2: target: '{spec.target}' (the spec names none; the data has a '{spec.target}' column)")
            spec = with_task(spec, spec.task, spec.target)  # now named: resolved once
        target = frame[spec.target]
    elif source in ("package", "sklearn") and spec.task == "auto":
        target = pd.Series(load(spec.data, root, spec.target).train.target, name=spec.target)
    else:
        target = None
    if spec.task != "auto":
        return spec
    if target is None:
        task, why = ("generate_text", "data.source: text") if source == "text" else ("classify", "images: a class each")
    else:
        task, why = infer_task(target)
    other = {"regress": "classify", "classify": "regress"}.get(task)
    log.info(f"sw2: task: {task} (inferred: {why}" + (f"; set task: {other} to override)" if other else ")"))
    return with_task(spec, task)
