"""What every data source shares: the examples it loads (`Loaded`), the function a source is (`Source`),
and finding a path named in the spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.spec import DataSpec


@dataclass
class Loaded:
    train: Examples
    test: Examples | None  # a test split the source itself provides
    description: str


Source = Callable[[DataSpec, Path, str], Loaded]


def resolve(root: Path, rel: str) -> Path:
    path = (root / rel).expanduser()
    if not path.exists():
        raise UserError(f"{path}: file or folder not found; check data.path (relative to the spec file)")
    return path


def split_target(frame: pd.DataFrame, target: str, path: Path) -> Examples:
    if target not in frame.columns:
        cols = ", ".join(map(str, frame.columns[:12]))
        raise UserError(f"{path}: no column '{target}' for the target; set target: to one of {cols}")
    ids = (frame.index.to_numpy() + frame.attrs.get("first_row_line", 2)).astype(str)  # the row's line in the file
    return Examples(target=frame[target].to_numpy(), frame=frame.drop(columns=[target]), ids=ids)
