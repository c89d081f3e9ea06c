"""Cleaning with counts: rows without a target, exact duplicates, train/test overlap, missing values, and
+-inf in numeric columns (refused, or made missing values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sw2.data.examples import Examples
from sw2.errors import UserError


def _missing_target(y: np.ndarray) -> np.ndarray:
    return pd.isna(pd.Series(y)).to_numpy()


def clean(train: Examples, test: Examples | None) -> tuple[Examples, Examples | None, dict[str, Any]]:
    """Drop rows with a missing target and exact duplicates (inputs and target) from train; count the rest."""
    report: dict[str, Any] = {}
    miss = _missing_target(train.target)
    report["dropped_missing_target"] = int(miss.sum())
    train = train.take(np.flatnonzero(~miss))
    if test is not None:
        tmiss = _missing_target(test.target)
        report["dropped_missing_target_test"] = int(tmiss.sum())
        test = test.take(np.flatnonzero(~tmiss))

    hashes = train.row_hashes()
    keyed = pd.DataFrame({"h": hashes, "y": pd.Series(train.target).astype(str).to_numpy()})
    dup = keyed.duplicated().to_numpy()
    report["dropped_duplicates"] = int(dup.sum())
    train = train.take(np.flatnonzero(~dup))
    hashes = hashes[~dup]
    conflicts = pd.DataFrame({"h": hashes}).duplicated(keep=False).to_numpy()
    report["same_input_different_target"] = int(conflicts.sum())

    if train.frame is not None:
        counts = train.frame.isna().sum()
        report["missing_values"] = {str(k): int(v) for k, v in counts.items() if v}
    if test is not None:
        report["test_rows_also_in_train"] = int(np.isin(test.row_hashes(), hashes).sum())
    return train, test, report


def _as_numbers(col: pd.Series) -> pd.Series | None:
    """The column as floats if it holds numbers (a numeric type, or text that is numbers only), else None."""
    if pd.api.types.is_bool_dtype(col):
        return None
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    parsed = pd.to_numeric(col, errors="coerce")
    return parsed.astype(float) if col.notna().any() and (parsed.notna() == col.notna()).all() else None


def nonfinite(ex: Examples, refuse: bool, file: str) -> tuple[Examples, dict[str, int]]:
    """+-inf in the numeric columns of `ex` (read from `file`): with `refuse` a one-line error naming the
    column and row, else made missing values (NaN, imputed like any other); returns the count per column."""
    if ex.frame is None:
        return ex, {}
    frame, counts = ex.frame, {}
    for name in ex.frame.columns:
        values = _as_numbers(ex.frame[name])
        if values is None:
            continue
        infinite = np.isinf(values.to_numpy())
        if not infinite.any():
            continue
        if refuse:
            pos = int(np.flatnonzero(infinite)[0])
            index = frame.index[pos]
            row = index + 1 if isinstance(index, int | np.integer) else pos + 1
            raise UserError(
                f"{file}: column '{name}' holds {values.iloc[pos]} (row {row}); replace it with a number, or set "
                f"data.nonfinite: missing to impute it like a missing value"
            )
        counts[str(name)] = int(infinite.sum())
        frame = frame.copy() if frame is ex.frame else frame
        frame[name] = values.mask(infinite)
    return Examples(target=ex.target, frame=frame, images=ex.images, ids=ex.ids), counts
