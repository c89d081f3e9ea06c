"""Cleaning with counts: rows without a target, exact duplicates, train/test overlap, missing values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sw2.data.examples import Examples


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
