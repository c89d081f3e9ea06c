"""Users' own files: CSVs in other delimiters and encodings (GBK Chinese among them), predictions that keep
the user's key columns and write Parquet, splits in time order and by group, and cross-validated metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sw2
from sw2.data.sources import read_table
from sw2.errors import UserError
from sw2.spec import parse_spec
from sw2.tasks import TASKS
from tests.conftest import sw2_here, write_spec

FAST = {"epochs": 2, "batch_size": 16, "lr": 0.01}


def table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """An easy two-class table: the class is the sign of x1 + x2; a city, a date and a customer beside."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame(
        {
            "x1": x[:, 0].round(3),
            "x2": x[:, 1].round(3),
            "city": rng.choice(["北京", "上海", "广州"], n),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="D"),
            "customer": rng.integers(0, 15, n),
            "label": np.where(x[:, 0] + x[:, 1] > 0, "好", "坏"),
        }
    )


def test_delimiters_and_encodings_are_sniffed(tmp_path):
    frame = table(30)
    files = {
        "semi.csv": (frame.to_csv(index=False, sep=";"), "utf-8"),
        "tabs.txt": (frame.to_csv(index=False, sep="\t"), "utf-8"),
        "tabs.tsv": (frame.to_csv(index=False, sep="\t"), "utf-8"),
        "pipes.csv": (frame.to_csv(index=False, sep="|"), "utf-8"),
        "bom.csv": (frame.to_csv(index=False), "utf-8-sig"),
        "gbk.csv": (frame.to_csv(index=False), "gbk"),
    }
    for name, (text, encoding) in files.items():
        (tmp_path / name).write_bytes(text.encode(encoding))
        read = read_table(tmp_path / name)
        assert list(read.columns) == list(frame.columns), name  # no BOM in the first name
        assert read["city"].tolist() == frame["city"].tolist(), name
        assert np.allclose(read["x1"], frame["x1"]), name
    latin = "nom;prix\nRené;1,5\nJosé;2,25\nZoë;3\n"  # a European spreadsheet: ; and decimal commas
    (tmp_path / "latin.csv").write_bytes(latin.encode("latin-1"))
    read = read_table(tmp_path / "latin.csv")
    assert read["nom"].tolist() == ["René", "José", "Zoë"] and read["prix"].tolist() == [1.5, 2.25, 3.0]
    with pytest.raises(UserError, match=r"gbk\.csv.*data\.encoding"):  # a wrong override: one line naming both
        read_table(tmp_path / "gbk.csv", encoding="utf-8")
    assert read_table(tmp_path / "semi.csv", sep=",").shape[1] == 1  # data.sep overrides the sniffer


def test_gbk_chinese_csv_trains_and_predictions_keep_columns(tmp_path):
    frame = table()
    (tmp_path / "data.csv").write_bytes(frame.to_csv(index=False).encode("gbk"))
    spec = {"name": "gbk", "data": {"path": "data.csv"}, "target": "label", "model": {"name": "mlp"}, "train": FAST}
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", check=False, verbose=False)
    assert sorted(bundle.classes) == ["坏", "好"]
    assert "city" in [c["name"] for c in bundle.encoder.categories]
    new = frame.drop(columns=["label"]).head(5).assign(ref=[f"r{i}" for i in range(5)])
    (tmp_path / "new.csv").write_bytes(new.to_csv(index=False, sep=";").encode("gbk"))
    out = tmp_path / "p.parquet"
    result = sw2_here("predict", str(tmp_path / "b"), str(tmp_path / "new.csv"), "--keep", "ref,city",
                      "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = pd.read_parquet(out)
    assert list(rows.columns[:4]) == ["ref", "city", "id", "prediction"]
    assert rows["ref"].tolist() == new["ref"].tolist() and rows["city"].tolist() == new["city"].tolist()
    assert rows["id"].tolist() == ["2", "3", "4", "5", "6"]  # the row numbers sw2 doctor's label_errors.csv uses
    assert set(rows["prediction"]) <= {"好", "坏"}
    bad = sw2_here("predict", str(tmp_path / "b"), str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.xlsx"))
    assert bad.returncode == 2 and ".xlsx" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    missing = sw2_here("predict", str(tmp_path / "b"), str(tmp_path / "new.csv"), "--keep", "nope")
    assert missing.returncode == 2 and "ref" in missing.stderr  # names the columns there are


def prepared(tmp_path: Path, split: dict, **data: object):
    table().to_csv(tmp_path / "t.csv", index=False)
    spec = parse_spec({"name": "s", "data": {"path": "t.csv", "split": split, **data}, "target": "label"})
    return TASKS.get("classify").prepare(spec, tmp_path)


def test_time_split_keeps_the_future_out_of_training(tmp_path):
    data = prepared(tmp_path, {"by": "day", "val": 0.2, "test": 0.2})
    days = [pd.to_datetime(p.frame["day"]) for p in (data.raw_train, data.raw_val, data.raw_test)]
    assert days[0].max() < days[1].min() and days[1].max() < days[2].min()  # ties never straddle a boundary
    assert all(len(d) > 10 for d in days)
    full = pd.to_datetime(prepared(tmp_path, {"by": "day"}).raw_train.frame["day"])
    limited = prepared(tmp_path, {"by": "day"}, limit=20)  # data.limit keeps the latest training rows
    kept = pd.to_datetime(limited.raw_train.frame["day"])
    assert len(kept) == 20 and kept.min() >= full.sort_values().iloc[-20] and kept.max() == full.max()
    table(40, seed=1).to_csv(tmp_path / "later.csv", index=False)
    own = prepared(tmp_path, {"by": "day", "val": 0.25}, test_path="later.csv")  # only val is carved: the latest
    assert len(own.raw_test) == 40 and abs(len(own.raw_val) - 30) <= 8
    assert pd.to_datetime(own.raw_train.frame["day"]).max() < pd.to_datetime(own.raw_val.frame["day"]).min()
    with pytest.raises(UserError, match=r"data\.split\.by: no column 'date'.*x1, x2, city"):
        prepared(tmp_path, {"by": "date"})


def test_group_split_never_shares_a_group(tmp_path):
    data = prepared(tmp_path, {"group": "customer", "val": 0.2, "test": 0.2})
    groups = [set(p.frame["customer"]) for p in (data.raw_train, data.raw_val, data.raw_test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert 40 < len(data.raw_train) < 100  # the shares hold approximately
    names = [c["name"] for c in data.encoder.numeric + data.encoder.categories]
    assert "customer" not in names and "x1" in names  # a group id is not an input


def test_cross_validation_writes_its_metrics(tmp_path):
    table(90).to_csv(tmp_path / "t.csv", index=False)
    spec = {"name": "cv", "data": {"path": "t.csv"}, "target": "label", "model": {"name": "mlp"}, "train": FAST}
    bundle = sw2.train(spec, tmp_path / "b", cv=3, check=False, root=tmp_path)
    record = json.loads((bundle.path / "cv.json").read_text())
    assert record["k"] == 3 and len(record["folds"]) == 3 and record["folds_by"] == "stratified"
    pool = bundle.metrics["data"]["train"] + bundle.metrics["data"]["val"]
    assert sum(f["scored"] for f in record["folds"]) == pool  # every row of train + val scored once
    acc = record["metrics"]["accuracy"]
    assert 0.5 < acc["mean"] <= 1 and acc["std"] >= 0
    assert bundle.metrics["cross_validation"]["metrics"]["accuracy"] == acc
    path = write_spec(tmp_path, spec)
    for k in ("1", "500"):  # too few folds; more than the smallest class holds
        result = sw2_here("train", str(path), "--out", str(tmp_path / "c"), "--cv", k, "--no-check")
        assert result.returncode == 2 and "--cv" in result.stderr, result.stderr
