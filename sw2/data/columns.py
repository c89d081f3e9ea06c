"""What each input column is, decided in one place: number, category, text, date, id or ignored, each with
its reason; and what the task is when the spec leaves it to sw2 (`infer_task`).

The spec's `inputs:` mapping overrides the columns it names; every other column is judged from the training
rows: a date when most values parse as one (and it is not numeric), text when `looks_like_text` says so, an
id when it is unique per row and in order (a row number) or hash-like (UUIDs, hex digests), a number when
its values are numbers, else a category. Ids and ignored columns are left out of the model's inputs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

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


@dataclass
class ColumnKind:
    """One input column: its kind (one of KINDS) and why."""

    name: str
    kind: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def column_kinds(frame: pd.DataFrame, inputs: str | dict[str, str], target: str) -> list[ColumnKind]:
    """The kind of every column of the training `frame` but `target`: the spec's `inputs` where it names the
    column ("ignore" becomes ignored), else judged from the values (see the module's docstring)."""
    declared = inputs if isinstance(inputs, dict) else {}
    missing = [c for c in declared if c not in frame.columns]
    if missing:
        raise UserError(
            f"inputs: column '{missing[0]}' is not in the data; columns are {', '.join(map(str, frame.columns[:12]))}"
        )
    out = []
    for name in frame.columns:
        if str(name) == target:
            continue
        if str(name) in declared:
            kind = declared[str(name)]
            kind = "ignored" if kind == "ignore" else kind
            out.append(ColumnKind(str(name), kind, f"inputs: {declared[str(name)]}"))
        else:
            out.append(ColumnKind(str(name), *_judged(frame[name])))
    return out


def _judged(col: pd.Series) -> tuple[str, str]:
    """(kind, reason) of a column the spec leaves to sw2."""
    values = col.dropna()
    if not len(values):
        return "number", "empty in every training row (filled with 0)"
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        if _row_number(values):
            return "id", "unique per row and in order (a row number)"
        return "number", "numbers"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "date", "dates"
    strs = values.astype(str)
    if _may_be_dates(strs) and parse_dates(strs.head(200))[0].notna().mean() >= 0.9:  # a sample first: cheap
        if parse_dates(strs)[0].notna().mean() >= 0.9:
            return "date", f"dates (e.g. '{strs.iloc[0]}')"
    if looks_like_text(col):
        return "text", "free text: mostly distinct values of several words"
    numbers = pd.to_numeric(strs, errors="coerce")
    if numbers.notna().mean() >= 0.9:
        return "number", "numbers"
    if len(strs) >= MIN_ROWS and strs.is_unique:
        if strs.str.fullmatch(HASH).mean() >= 0.9:
            return "id", f"hash-like, unique per row (e.g. '{strs.iloc[0][:40]}')"
        if strs.is_monotonic_increasing or strs.is_monotonic_decreasing:
            return "id", "unique per row and in order (a key)"
    return "category", f"{strs.nunique()} distinct values"


def _row_number(values: pd.Series) -> bool:
    """Whole numbers, unique per row and in order: a row number or record key, not a measurement."""
    if len(values) < MIN_ROWS or pd.api.types.is_bool_dtype(values) or not values.is_unique:
        return False
    if not (values.is_monotonic_increasing or values.is_monotonic_decreasing):
        return False
    return bool((values.astype(float) % 1 == 0).all())


def _may_be_dates(strs: pd.Series) -> bool:
    """Strings a date parser may read: digits and at least one separator, of a date's length (names of days or
    months alone are categories)."""
    sample = strs.head(200)
    return bool(sample.str.fullmatch(r"[\dT:/.\-+ ,A-Za-z]{6,40}").mean() >= 0.9 and sample.str.count(r"\d").min() >= 4)


def kinds_table(kinds: list[ColumnKind] | list[dict[str, Any]]) -> list[str]:
    """One aligned line per column: name, kind, reason."""
    rows = [k if isinstance(k, dict) else k.to_json() for k in kinds]
    width = max((len(r["name"]) for r in rows), default=0)
    return [f"  {r['name']:<{width}}  {r['kind']:<8}  {r['reason']}" for r in rows]


# ---- the task ---------------------------------------------------------------------------------------------
REGRESS_DISTINCT = 20  # more distinct numbers than this: a quantity to regress, not classes


def infer_task(target: pd.Series) -> tuple[str, str]:
    """("classify" or "regress", why): numbers with many distinct values are regressed, anything else is
    classified."""
    values = target.dropna()
    name = f"target '{target.name}'" if target.name is not None else "the target"
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
            cols = ", ".join(map(str, frame.columns[:20]))
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
