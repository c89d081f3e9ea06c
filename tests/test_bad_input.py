"""Each bad input: a one-line message naming the problem and the fix, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sw2.bundle import REQUIRED
from tests.conftest import make_image_folder, sw2, sw2_here, write_spec


def check_refused(tmp: Path, spec: dict | str, *needles: str) -> None:
    """Train must fail with exit 2 and one line; an older bundle at --out must survive untouched."""
    spec_path = tmp / "spec.yaml"
    if isinstance(spec, str):
        spec_path.write_text(spec)
    else:
        write_spec(tmp, spec)
    out = tmp / "bundle"
    out.mkdir()
    for name in REQUIRED:  # what sw2 recognises an older bundle by: the one thing --out may replace
        (out / name).write_text(f"older bundle's {name}")
    res = sw2_here("train", str(spec_path), "--out", str(out), "--quiet", cwd=tmp)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert {p.name: p.read_text() for p in out.iterdir()} == {n: f"older bundle's {n}" for n in REQUIRED}
    assert not [p for p in tmp.iterdir() if p.name.startswith(".bundle")], "temporary folder left behind"


def csv_spec(path: str, **extra) -> dict:
    return {"data": {"path": path}, "target": "y", "train": {"epochs": 1}, **extra}


def test_malformed_yaml(tmp_path):
    check_refused(tmp_path, "data:\n  path: a.csv\n   target: y\n", "malformed YAML at line 3")


def test_unknown_key(tmp_path):
    check_refused(tmp_path, {"data": {"path": "a.csv"}, "trian": {}}, "unknown key 'trian'", "did you mean 'train'")


def test_wrong_type(tmp_path):
    check_refused(tmp_path, {"data": {"path": "a.csv"}, "train": {"batch_size": "big"}}, "train.batch_size")


def test_missing_file(tmp_path):
    check_refused(tmp_path, csv_spec("nowhere.csv"), "nowhere.csv", "not found")


def test_missing_column(tmp_path):
    pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1]}).to_csv(tmp_path / "a.csv", index=False)
    check_refused(tmp_path, csv_spec("a.csv"), "no column 'y'", "set target:")


def test_missing_input_column(tmp_path):
    pd.DataFrame({"a": [1, 2, 3, 4], "y": [0, 1, 0, 1]}).to_csv(tmp_path / "a.csv", index=False)
    check_refused(tmp_path, csv_spec("a.csv", inputs={"height": "number"}), "inputs: column 'height'")


def test_target_with_one_value(tmp_path):
    pd.DataFrame({"a": range(20), "y": ["cat"] * 20}).to_csv(tmp_path / "a.csv", index=False)
    check_refused(tmp_path, csv_spec("a.csv"), "target 'y' has a single value ('cat')")


@pytest.mark.parametrize("declared", [True, False])
def test_non_numeric_value_in_numeric_column(tmp_path, declared):
    values = [str(i) for i in range(40)]
    values[17] = "twelve"
    pd.DataFrame({"a": values, "y": [0, 1] * 20}).to_csv(tmp_path / "a.csv", index=False)
    spec = csv_spec("a.csv", inputs={"a": "number"}) if declared else csv_spec("a.csv")
    check_refused(tmp_path, spec, "column 'a'", "'twelve'", "row 18", "not a number")


def test_regression_target_not_numeric(tmp_path):
    pd.DataFrame({"a": range(20), "y": ["low", "high"] * 10}).to_csv(tmp_path / "a.csv", index=False)
    check_refused(tmp_path, csv_spec("a.csv", task="regress"), "target 'y'", "needs a numeric target")


def test_corrupt_image(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", per_class=4)
    (folder / "h" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    spec = {"data": {"path": "imgs", "cache_dir": str(tmp_path / "cache")}, "train": {"epochs": 1}}
    check_refused(tmp_path, spec, "broken.png", "cannot decode image", "remove or replace")


def test_every_unreadable_image_is_named(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", per_class=4)
    for name in ("h/a.png", "h/b.jpg", "v/c.png", "v/d.png"):
        (folder / name).write_bytes(b"garbage")
    spec = {"data": {"path": "imgs", "cache_dir": str(tmp_path / "cache")}, "train": {"epochs": 1}}
    check_refused(tmp_path, spec, "4 of 12 images cannot be decoded", "h/a.png", "h/b.jpg", "remove or replace them")


def test_empty_class_folder(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", per_class=4)
    (folder / "empty").mkdir()
    spec = {"data": {"path": "imgs", "cache_dir": str(tmp_path / "cache")}, "train": {"epochs": 1}}
    check_refused(tmp_path, spec, "empty", "class folder has no images")


def test_spec_file_missing(tmp_path):
    res = sw2_here("train", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2 and "spec file not found" in res.stderr


def test_debug_shows_traceback(tmp_path):
    write_spec(tmp_path, csv_spec("nowhere.csv"))
    res = sw2("--debug", "train", str(tmp_path / "spec.yaml"), cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_predict_bad_bundle(tmp_path):
    res = sw2_here("predict", str(tmp_path), "x.png")
    assert res.returncode == 2 and "not a complete bundle" in res.stderr


def test_a_model_width_below_one_is_refused(tmp_path: Path) -> None:
    spec = {"data": {"source": "package", "name": "digits"}, "model": {"name": "mlp", "widths": [64, 0]}}
    check_refused(tmp_path, spec, "model: widths", "size below 1")
