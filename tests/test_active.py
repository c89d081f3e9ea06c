"""Active learning: `sw2 suggest` ranks an unlabeled pool for a classifier by uncertainty (margin, entropy) with a
k-center diversity step, or by diversity alone (coreset); images get a contact sheet; bad input is one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import sw2
from tests.conftest import sw2_here


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """300 of scikit-learn's 8 x 8 digits as PNG files, unlabeled (the demo's bundle reads them)."""
    datasets = pytest.importorskip("sklearn.datasets")
    folder = tmp_path_factory.mktemp("pool")
    images = datasets.load_digits().images[-300:]
    for i, img in enumerate(images):
        Image.fromarray((img * 255 / 16).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_margin_picks_uncertain_diverse_examples_with_a_contact_sheet(digits, pool, tmp_path):
    rows = sw2.suggest(digits.path, pool, 20, strategy="margin", out=tmp_path / "next.csv")
    assert list(rows["rank"]) == list(range(1, 21)) and rows["id"].is_unique
    every = sw2.suggest(digits.path, pool, 300, strategy="margin")  # the whole pool, ranked
    assert rows["probability"].mean() < every["probability"].mean()  # less sure of the picks than of the pool
    written = pd.read_csv(tmp_path / "next.csv")
    assert len(written) == 20 and (tmp_path / "next.png").read_bytes()[:4] == b"\x89PNG"
    for strategy in ("entropy", "coreset"):
        assert len(sw2.suggest(digits.path, pool, 10, strategy=strategy)) == 10


def test_a_table_pool_is_ranked_without_a_sheet(penguins, tmp_path):
    from palmerpenguins import load_penguins

    rows = load_penguins().drop(columns=["species"]).head(40)
    rows.to_csv(tmp_path / "pool.csv", index=False)
    r = sw2_here("suggest", str(penguins), "--pool", str(tmp_path / "pool.csv"), "--n", "5", "--out",
                 str(tmp_path / "next.csv"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "next.csv")) == 5 and not (tmp_path / "next.png").exists()


def test_bad_suggestions_are_one_line_errors_and_write_nothing(digits, pool, tmp_path, language_model):
    out = str(tmp_path / "next.csv")
    cases = [
        ([str(digits.path), "--pool", str(pool), "--n", "301", "--out", out], "the pool holds 300"),
        ([str(digits.path), "--pool", str(pool), "--strategy", "random", "--out", out], "--strategy"),
        ([str(language_model), "--pool", str(pool), "--out", out], "ranks a classifier's pool"),
        ([str(digits.path), "--pool", str(tmp_path / "rows.csv"), "--out", out], "cannot decode image"),
        ([str(digits.path), "--pool", str(tmp_path / "missing"), "--out", out], "no such image file or folder"),
    ]
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")  # a table for an image model
    for args, says in cases:
        r = sw2_here("suggest", *args)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "next.csv").exists()
