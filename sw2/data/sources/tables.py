"""Tables of rows, one column the target: CSV (also TSV, other delimiters and JSON Lines; source `csv`) and
Parquet (`parquet`).

A CSV's encoding and delimiter are sniffed from its first megabyte (sw2.data.sources.sniff) unless
`data.encoding` / `data.sep` say them; a `.tsv`/`.tab` file is tab-separated, a `.jsonl` file holds one JSON
object per line. A row's id (reports, sw2 doctor's label_errors.csv, data.exclude, sw2 predict) is its row
number as a spreadsheet shows it: the header is row 1, the first row of data row 2 (JSON Lines: its line).
"""

from __future__ import annotations

import codecs
import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sw2.data.sources.base import Loaded, Source, resolve, split_target
from sw2.data.sources.sniff import decimal_of, decodes, encoding_of, sample, sep_of, thousands_of
from sw2.errors import UserError
from sw2.plugins import SOURCES
from sw2.spec import DataSpec

Reader = Callable[[Path, str | None, str | None], pd.DataFrame]  # (file, data.sep, data.encoding) -> rows
ENCODINGS = "e.g. utf-8, gb18030, cp1252, latin-1"


CACHED = 2  # tables kept read (a run's train and test files)
_read: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()


def _read_table(path: Path, reader: Reader, sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """The file's rows, parsed once while its bytes are unchanged: resolving a spec (its target and task) and
    preparing its data read the same file, so the second read is a copy of the first (the cache holds the last
    CACHED tables, each under its path, its file's identity, size and modification time in nanoseconds, and the
    reading's sep and encoding: a rewritten file is read again, without hashing every byte on every read)."""
    try:
        st = path.stat()
        key: tuple[Any, ...] | None = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        key += (reader, sep, encoding)
    except OSError:
        key = None  # the reader says what is wrong with the file
    if key is not None and key in _read:
        _read.move_to_end(key)
        return _read[key].copy()
    try:
        frame = reader(path, sep, encoding)
    except UserError:
        raise
    except Exception as err:  # the readers raise many types for a bad file
        raise UserError(f"{path}: cannot read table ({type(err).__name__}: {err}); check the file") from None
    if frame.empty:
        raise UserError(f"{path}: the table has no rows; give a file with data")
    if key is not None:
        _read[key] = frame.copy()  # the caller may change its own
        while len(_read) > CACHED:
            _read.popitem(last=False)
    return frame


def _table_source(reader: Reader, kind: str) -> Source:
    def load_table(data: DataSpec, root: Path, target: str) -> Loaded:
        path = resolve(root, data.path or "")
        train = split_target(_read_table(path, reader, data.sep, data.encoding), target, path)
        test = None
        if data.test_path:
            tpath = resolve(root, data.test_path)
            test = split_target(_read_table(tpath, reader, data.sep, data.encoding), target, tpath)
        return Loaded(train, test, f"{kind} {path}")

    return load_table


def _encoding(path: Path, head: bytes, given: str | None) -> str:
    """The file's encoding: `given` (data.encoding; UTF-8 skips a byte-order mark), else sniffed from `head`."""
    if given is not None:
        utf8 = codecs.lookup(given).name == "utf-8"
        return "utf-8-sig" if utf8 and head.startswith(codecs.BOM_UTF8) else given
    found = encoding_of(head)
    if found is None:
        raise UserError(
            f"{path}: not a text table (it holds NUL bytes); give a CSV, or set data.encoding to its encoding "
            f"({ENCODINGS}, utf-16)"
        )
    return found


def _read_csv(path: Path, sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        frame = pd.read_json(path, lines=suffix == ".jsonl", encoding=encoding or "utf-8")
        nested = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list | dict)).any()]
        for c in nested:  # lists and objects become their JSON text
            frame[c] = frame[c].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
        frame.attrs["first_row_line"] = 1  # JSON Lines has no header line
        return frame
    head = sample(path)
    enc = _encoding(path, head, encoding)
    text = decodes(head, enc)
    if text is None:
        raise UserError(f"{path}: not {enc} text; set data.encoding to the file's encoding ({ENCODINGS})")
    if sep is None:
        sep = "\t" if suffix in (".tsv", ".tab") else sep_of(text)
    try:
        decimal = decimal_of(text, sep)
        return pd.read_csv(path, sep=sep, encoding=enc, decimal=decimal, thousands=thousands_of(text, sep, decimal))
    except UnicodeDecodeError as err:
        said = "data.encoding" if encoding else "the encoding sniffed from its first megabyte"
        raise UserError(
            f"{path}: not {enc} text further on ({err.reason}), {said}; set data.encoding to the file's encoding "
            f"({ENCODINGS})"
        ) from None


def _read_parquet(path: Path, sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("Parquet needs pyarrow: pip install 'sw2[data]'") from None
    return pd.read_parquet(path)


SOURCES.register("csv")(_table_source(_read_csv, "CSV"))
SOURCES.register("parquet")(_table_source(_read_parquet, "Parquet"))


def read_table(path: Path, sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """A CSV/TSV/JSON Lines or Parquet file of rows (by suffix), with the sources' one-line errors; `sep` and
    `encoding` as data.sep and data.encoding (None: sniffed)."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; give a CSV or Parquet file of rows")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    return _read_table(path, _read_parquet if parquet else _read_csv, sep, encoding)


def row_ids(frame: pd.DataFrame) -> np.ndarray:
    """Each row's id as the sources give it (as split_target does): its row number in the file's spreadsheet
    view (the header row 1), or its line in a JSON Lines file."""
    return (np.arange(len(frame)) + frame.attrs.get("first_row_line", 2)).astype(str)
