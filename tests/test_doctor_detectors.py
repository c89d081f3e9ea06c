"""The data doctor's detectors fire on purpose: each WARN / FAIL is triggered by data built to have the
problem, beside a clean control that PASSes, so a check that always answered PASS (or always WARN) fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sw2.api import resolve_spec
from sw2.data import Prepared, prepare
from sw2.preflight.data_checks import class_balance, columns, duplicates, labels_only_in_test
from sw2.preflight.verdict import Verdict
from sw2.spec import parse_spec
from sw2.tasks import TASKS

SIZE = 32  # CIFAR-sized images


def smooth_images(n: int, seed: int) -> np.ndarray:
    """n photo-like RGB images (bicubic blow-ups of 5 x 5 random colours, none saturated), 2 pixels larger than
    SIZE each way so that 1-pixel-shifted crops of the same picture can be cut: N x 3 x (SIZE + 2)^2 uint8."""
    rng = np.random.default_rng(seed)
    low = torch.from_numpy(rng.uniform(40, 215, (n, 3, 5, 5))).float()
    big = F.interpolate(low, size=(SIZE + 2, SIZE + 2), mode="bicubic", align_corners=False)
    return big.clamp(0, 255).round().to(torch.uint8).numpy()


def crop(big: np.ndarray, dy: int = 1, dx: int = 1) -> np.ndarray:
    """The SIZE x SIZE crop at offset (dy, dx): (1, 1) is the picture itself, any other a 1-pixel shift of it."""
    return big[:, :, dy : dy + SIZE, dx : dx + SIZE]


def save_images(folder: Path, images: np.ndarray, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0))).save(folder / f"{prefix}{i:03d}.png")


def prepared(spec: dict, root: Path) -> Prepared:
    parsed, _ = resolve_spec(parse_spec({"train": {"epochs": 1}, **spec}), root)  # task: auto decided by the data
    return prepare(parsed, root, TASKS.get(parsed.task))


def by_check(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.check: v for v in verdicts}


@pytest.fixture(scope="module")
def pictures() -> dict[str, np.ndarray]:
    """Per class, 40 train pictures and 20 that train never saw (the larger, uncropped canvases)."""
    return {"a": smooth_images(60, seed=1), "b": smooth_images(60, seed=2)}


def image_data(root: Path, pictures: dict[str, np.ndarray], test_of: dict[str, np.ndarray]) -> Prepared:
    """An image folder with train/<class>/ (40 pictures each) and test/<class>/ holding `test_of[class]`."""
    for label, big in pictures.items():
        save_images(root / "train" / label, crop(big[:40]), "p")
        save_images(root / "test" / label, test_of[label], "t")
    data = {"path": "data", "cache_dir": str(root.parent / "cache"), "split": {"val": 0.0}}  # all 80 train
    return prepared({"data": data}, root.parent)


def test_images_copied_into_test_are_a_leakage_fail(tmp_path, pictures):
    # per class: 10 unseen pictures, 3 exact copies of train pictures, 3 of them moved by one pixel
    test_of = {
        k: np.concatenate([crop(big[40:50]), crop(big[:3]), crop(big[3:6], 1, 2)]) for k, big in pictures.items()
    }
    leak = by_check(duplicates(image_data(tmp_path / "data", pictures, test_of)))["train/test leakage"]
    assert leak.status == "FAIL", leak
    assert "test examples also in train: 6 exact, 12 of 32 (37.5%) near" in leak.message, leak
    assert "de-duplicate across the split" in leak.message


@pytest.mark.parametrize(("dy", "dx"), [(1, 0), (1, 2), (0, 1), (2, 1), (0, 0), (2, 2)])
def test_images_moved_by_one_pixel_are_still_leakage(tmp_path, pictures, dy, dx):
    test_of = {k: np.concatenate([crop(big[40:50]), crop(big[:4], dy, dx)]) for k, big in pictures.items()}
    leak = by_check(duplicates(image_data(tmp_path / "data", pictures, test_of)))["train/test leakage"]
    assert leak.status == "FAIL", leak
    assert "test examples also in train: 0 exact, 8 of 28 (28.6%) near" in leak.message, leak


def test_unseen_test_images_pass_leakage(tmp_path, pictures):
    test_of = {k: crop(big[40:60]) for k, big in pictures.items()}
    got = by_check(duplicates(image_data(tmp_path / "data", pictures, test_of)))
    assert got["train/test leakage"].status == "PASS", got
    assert "0 exact, 0 of 40 (0.0%) near" in got["train/test leakage"].message
    assert got["duplicates in train"].status == "PASS", got


def test_exact_and_near_duplicate_images_in_train_warn(tmp_path, pictures):
    root = tmp_path / "data"
    for label, big in pictures.items():
        save_images(root / label, crop(big[:40]), "p")
    a = crop(pictures["a"][:4])
    save_images(root / "a", a, "exact")  # the same files again: dropped as exact duplicates
    brighter = np.clip(a[:3].astype(int) + 4, 0, 255).astype(np.uint8)
    save_images(root / "a", brighter, "bright")  # re-exported a little brighter: near duplicates
    data = {"path": "data", "cache_dir": str(tmp_path / "cache"), "split": {"val": 0.0, "test": 0.0}}
    got = by_check(duplicates(prepared({"data": data}, tmp_path)))["duplicates in train"]
    assert got.status == "WARN", got
    assert got.message == "4 exact duplicates dropped; near duplicates (near-identical images): 3 of 83 (3.6%)"


def table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A clean table: two numbers and a category predicting a two-class label, with some noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "color": rng.choice(["red", "green", "blue"], n)}
    )
    noisy = frame.x1 + 0.5 * (frame.color == "red") + rng.normal(0, 0.7, n)
    frame["label"] = np.where(noisy > 0.2, "yes", "no")
    return frame


def table_data(tmp_path: Path, frame: pd.DataFrame, test: pd.DataFrame | None = None, **data) -> Prepared:
    frame.to_csv(tmp_path / "train.csv", index=False)
    if test is not None:
        test.to_csv(tmp_path / "test.csv", index=False)
        data["test_path"] = "test.csv"
    return prepared({"data": {"path": "train.csv", **data}, "target": "label"}, tmp_path)


def test_clean_table_passes_every_detector(tmp_path):
    p = table_data(tmp_path, table())
    got = by_check([class_balance(p), *duplicates(p), *columns(p, "accuracy"), labels_only_in_test(p)])
    names = ("class balance", "duplicates in train", "train/test leakage", "constant columns", "missing values",
             "leaking column", "labels only in test")  # fmt: skip
    assert set(names) <= set(got) and {v.status for v in got.values()} == {"PASS"}, got


def test_exact_and_near_duplicate_rows_in_train_warn(tmp_path):
    frame = table()
    exact = frame.iloc[:6]
    near = frame.iloc[6:14].assign(x1=frame.x1.iloc[6:14] * (1 + 1e-7), color=lambda f: f.color.str.upper() + " ")
    p = table_data(tmp_path, pd.concat([frame, exact, near]), split={"val": 0.0, "test": 0.0})
    got = by_check(duplicates(p))["duplicates in train"]
    assert got.status == "WARN", got
    assert got.message == "6 exact duplicates dropped; near duplicates (rows equal once normalised): 8 of 308 (2.6%)"


def test_a_label_only_in_test_warns(tmp_path):
    frame = table()
    test = table(60, seed=1)
    test.loc[:4, "label"] = "maybe"  # five rows of a class train never had
    got = labels_only_in_test(table_data(tmp_path, frame, test))
    assert got.status == "WARN", got
    assert got.message.startswith("5 val/test examples have labels never seen in train"), got


def test_a_95_5_class_imbalance_warns(tmp_path):
    frame = table(400)
    frame["label"] = np.where(np.arange(400) % 20 == 0, "rare", "common")  # 20 of 400: 5%
    got = class_balance(table_data(tmp_path, frame, split={"val": 0.0, "test": 0.0}))
    assert got.status == "WARN", got
    assert "smallest class 'rare' has 20 examples, largest 'common' 380" in got.message, got
    assert "collect more of the rare class" in got.message
    frame["label"] = np.where(np.arange(400) % 4 == 0, "rare", "common")  # 25%: unbalanced but fine
    assert class_balance(table_data(tmp_path, frame, split={"val": 0.0, "test": 0.0})).status == "PASS"


def test_a_constant_column_warns(tmp_path):
    got = by_check(columns(table_data(tmp_path, table().assign(site="lab 1")), "accuracy"))["constant columns"]
    assert got.status == "WARN", got
    assert got.message == "site never change in train; drop them from inputs"


def test_a_row_id_of_label_sorted_rows_fails(tmp_path):
    frame = table().sort_values("label").reset_index(drop=True)
    frame.insert(0, "record_id", np.arange(1000, 1000 + len(frame)))
    frame.to_csv(tmp_path / "train.csv", index=False)
    kept = prepared({"data": {"path": "train.csv"}, "target": "label", "inputs": {"record_id": "number"}}, tmp_path)
    got = by_check(columns(kept, "accuracy"))["leaking column"]  # an id is left out unless the spec keeps it
    assert got.status == "FAIL", got
    assert "'record_id' looks like a row ID and alone predicts the target" in got.message, got
    assert "drop it from inputs" in got.message
    shuffled = frame.sample(frac=1.0, random_state=0).assign(record_id=np.arange(len(frame)))  # numbered at random
    assert by_check(columns(table_data(tmp_path, shuffled), "accuracy"))["leaking column"].status == "PASS"


def test_missing_values_over_half_warn(tmp_path):
    frame = table()
    frame.loc[frame.index % 5 < 3, "x2"] = np.nan  # 60% missing
    p = table_data(tmp_path, frame)
    got = by_check(columns(p, "accuracy"))["missing values"]
    assert got.status == "WARN", got
    rate = p.raw_train.frame["x2"].isna().mean()  # about 60% of the rows train kept
    assert 0.5 < rate and f"'x2' is {rate:.0%} missing; drop or fill it" == got.message, got
    frame.loc[frame.index % 5 < 3, "x2"] = 0.0
    frame.loc[frame.index % 5 == 0, "x2"] = np.nan  # 20%: reported, not a warning
    got = by_check(columns(table_data(tmp_path, frame), "accuracy"))["missing values"]
    assert got.status == "PASS" and "most in 'x2'" in got.message, got
