"""`sw2 predict`'s table of rows and the file it is written to.

A row is the columns of the input that `keep` names (passed through unchanged, first), then what the task
gives: id, prediction and probabilities. The id of a row of a CSV, TSV, JSON Lines or Parquet file is its
row number as a spreadsheet shows it (the header row 1, the first row of data 2; JSON Lines: its line), the
same id as in sw2 doctor's label_errors.csv and what data.exclude reads; an image's id is its path. A kept
column named like one of the task's columns (e.g. `id`) keeps its name, and the task's column is renamed
sw2_<name>. The file is CSV (.csv or no suffix) or Parquet (.parquet, .pq; pyarrow).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sw2.errors import UserError
from sw2.files import write_file

if TYPE_CHECKING:
    from sw2.bundle import Bundle

SUFFIXES = {"": "csv", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table(bundle: Bundle, data: Any, top: int = 3, keep: list[str] | None = None) -> pd.DataFrame:
    """The prediction rows of `data` (anything Bundle.examples reads), the `keep` columns of its rows first."""
    examples = bundle.examples(data)
    rows = pd.DataFrame(bundle.prediction_rows(examples, top))
    if not keep:
        return rows
    frame = examples.frame
    if frame is None:
        raise UserError("--keep: the inputs are images, which have no columns to keep; leave --keep out")
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        cols = ", ".join(map(str, frame.columns[:20]))
        raise UserError(f"--keep: no column '{missing[0]}' in the input rows; columns are {cols}")
    rows = rows.rename(columns={c: f"sw2_{c}" for c in rows.columns if c in keep})
    return pd.concat([frame[keep].reset_index(drop=True), rows], axis=1)


def file_format(path: Path, flag: str = "--output") -> str:
    """csv or parquet, from the suffix of `path`; any other suffix is refused."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"{flag} {path}: sw2 writes no '{path.suffix}' tables; give a .csv or .parquet file")
    return kind


def write(rows: pd.DataFrame, path: Path) -> None:
    """`rows` into `path` (CSV or Parquet by its suffix), replaced whole or not at all."""
    if file_format(path) == "csv":
        write_file(path, rows.to_csv(index=False))
        return
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("--output .parquet needs pyarrow: pip install 'sw2[data]'") from None
    buffer = io.BytesIO()
    try:
        rows.to_parquet(buffer, index=False)
    except (TypeError, ValueError):  # pyarrow: a kept column of mixed types (numbers and text) is written as text
        buffer = io.BytesIO()
        mixed = {c: rows[c].map(lambda v: v if pd.isna(v) else str(v)) for c in rows.columns if rows[c].dtype == object}
        rows.assign(**mixed).to_parquet(buffer, index=False)
    write_file(path, buffer.getvalue())
