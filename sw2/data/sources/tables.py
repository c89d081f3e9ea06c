"""Tables of rows, one column the target: CSV (also TSV and JSON Lines; source `csv`) and Parquet (`parquet`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from sw2.data.sources.base import Loaded, Source, resolve, split_target
from sw2.errors import UserError
from sw2.plugins import SOURCES
from sw2.spec import DataSpec


def _read_table(path: Path, reader: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    try:
        frame = reader(path)
    except UserError:
        raise
    except Exception as err:  # the readers raise many types for a bad file
        raise UserError(f"{path}: cannot read table ({type(err).__name__}: {err}); check the file") from None
    if frame.empty:
        raise UserError(f"{path}: the table has no rows; give a file with data")
    return frame


def _table_source(reader: Callable[[Path], pd.DataFrame], kind: str) -> Source:
    def load_table(data: DataSpec, root: Path, target: str) -> Loaded:
        path = resolve(root, data.path or "")
        train = split_target(_read_table(path, reader), target, path)
        test = None
        if data.test_path:
            tpath = resolve(root, data.test_path)
            test = split_target(_read_table(tpath, reader), target, tpath)
        return Loaded(train, test, f"{kind} {path}")

    return load_table


def _read_csv(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".jsonl", ".json"):
        frame = pd.read_json(path, lines=path.suffix.lower() == ".jsonl")
        nested = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list | dict)).any()]
        for c in nested:  # lists and objects become their JSON text
            frame[c] = frame[c].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
        frame.attrs["first_row_line"] = 1  # JSON Lines has no header line
        return frame
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("Parquet needs pyarrow: pip install 'sw2[data]'") from None
    return pd.read_parquet(path)


SOURCES.register("csv")(_table_source(_read_csv, "CSV"))
SOURCES.register("parquet")(_table_source(_read_parquet, "Parquet"))


def read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV or Parquet file of rows (by suffix), with the sources' one-line errors."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; give a CSV or Parquet file of rows")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    return _read_table(path, _read_parquet if parquet else _read_csv)
