"""Users' own files: CSVs in other delimiters and encodings (GBK Chinese among them), predictions that keep
the user's key columns and write Parquet, splits in time order and by group, and cross-validated metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sw2
from sw2.data.sources import detect, read_table
from sw2.errors import UserError
from sw2.spec import DataSpec, parse_spec
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
        "tabs.tab": (frame.to_csv(index=False, sep="\t"), "utf-8"),
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
        assert detect(DataSpec(path=name), tmp_path) == "csv", name  # `source: auto` knows each as a table
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


def test_drift_reference_watches_a_date_column_as_elapsed_days():
    """reference.json (and serve's drift gauges) read a date column as the days the model reads, once, not as
    a number that never parses; dates after the training period drift."""
    from sw2.data.columns import column_kinds
    from sw2.data.encode import Encoder
    from sw2.data.examples import Examples
    from sw2.evaluation.reference import build, psi, shares, statistics
    from sw2.spec import ServeSpec

    frame = table(200)
    frame["day"] = frame["day"].dt.strftime("%Y-%m-%d")  # as a CSV and a served request give it
    kinds = column_kinds(frame, "auto", "label")
    frame = frame.drop(columns=["label"])
    train = Examples(target=np.zeros(len(frame)), frame=frame)
    encoder = Encoder.fit(train, None, kinds)
    assert any(c.get("date") == "days" for c in encoder.numeric)
    stats = statistics(encoder, train)
    assert "day" not in stats and 0 <= np.nanmin(stats["day_days"]) and np.nanmax(stats["day_days"]) <= 40
    ref = build(encoder, train, None, ServeSpec())["statistics"]["day_days"]
    later = frame.assign(day=(pd.to_datetime(frame["day"]) + pd.Timedelta(days=365)).dt.strftime("%Y-%m-%d"))
    same, moved = (statistics(encoder, Examples(np.zeros(len(f)), f))["day_days"] for f in (frame, later))
    assert psi(ref["shares"], shares(same, ref["edges"])) < 0.01 < 0.2 < psi(ref["shares"], shares(moved, ref["edges"]))


def test_a_file_to_predict_is_read_as_it_is_written_not_as_the_training_file_was(tmp_path):
    """sw2 predict on a bundle trained from a GB18030 `;` file: a UTF-8 `,` file is read as UTF-8 with commas
    (not decoded into other characters), a GB18030 one as the spec says; --sep / --encoding say it outright
    (checked as data.sep / data.encoding); a file that fails to decode says what predict takes."""
    from sw2.bundle import Bundle
    from sw2.cli import parser

    class Trained:  # what Bundle.examples reads of a bundle trained with data.sep ';' and data.encoding gb18030
        task = type("Task", (), {"check_use": staticmethod(lambda *a: None)})()
        encoder = type("Encoder", (), {"image_shape": None})()
        spec = parse_spec({"data": {"path": "train.csv", "sep": ";", "encoding": "gb18030"}, "target": "label"})

        def examples(self, data, sep=None, encoding=None):
            return Bundle.examples(self, data, sep, encoding)

    frame = table(20).drop(columns=["label"])
    (tmp_path / "utf8.csv").write_text(frame.to_csv(index=False), encoding="utf-8")
    (tmp_path / "gb.csv").write_bytes(frame.to_csv(index=False, sep=";").encode("gb18030"))
    (tmp_path / "pipes.csv").write_bytes(frame.to_csv(index=False, sep="|").encode("gb18030"))
    for name, sep, encoding in (("utf8.csv", None, None), ("gb.csv", None, None), ("pipes.csv", "|", "gbk")):
        read = Trained().examples(tmp_path / name, sep, encoding).frame
        assert list(read.columns) == list(frame.columns) and read["city"].tolist() == frame["city"].tolist(), name
    for sep, encoding, said in (
        (";;", None, "--sep: ';;' is not one character"),
        (None, "nope", "--encoding: unknown"),
    ):
        with pytest.raises(UserError, match=said):
            Trained().examples(tmp_path / "utf8.csv", sep, encoding)
    late = b"x1,city\n" + b"1,a\n" * 300_000 + "2,北京\n".encode("gb18030")  # not UTF-8 past the sniffed megabyte
    (tmp_path / "late.csv").write_bytes(late)
    with pytest.raises(UserError, match=r"for a file to predict: sw2 predict --encoding ENC$"):
        Trained().examples(tmp_path / "late.csv", ",", "utf-8")
    args = parser().parse_args(["predict", "b", "rows.csv", "--sep", ";", "--encoding", "gbk"])
    assert (args.sep, args.encoding) == (";", "gbk")


# ---- review mends (unit level, no training) ------------------------------------------------------------
def test_time_order_reads_dates_as_the_date_features_do():
    """C1/D1: split.by parsed dates on its own, month first and without UTC: day-first dates sorted wrongly, and
    mixed time zones raised a raw ValueError."""
    from sw2.data.split import time_keys

    day_first = pd.Series(["01/02/2020", "15/01/2020", "13/02/2020", "03/01/2020"])
    assert np.argsort(time_keys(day_first, "d")).tolist() == [3, 1, 0, 2]
    zones = pd.Series(["2020-01-01T00:00:00+01:00", "2020-01-01T00:30:00Z", "2020-01-02T00:00:00Z"])
    assert np.argsort(time_keys(zones, "d")).tolist() == [0, 1, 2]  # 23:00 UTC the day before comes first
    with pytest.raises(UserError, match="neither dates nor numbers"):
        time_keys(pd.Series(["2020-01-01", "now", "2020-01-03"]), "d")


def test_group_split_leaves_test_and_val_rows_beside_one_big_group():
    """C2: one early group of 900 rows skipped test and val for every later group: [0, 0, 1000]."""
    from sw2.data.examples import Examples
    from sw2.data.split import deal, folds, group_indices
    from sw2.spec import SplitSpec

    groups = np.array([0] * 900 + list(range(1, 101)))
    for seed in (40, 0, 1):
        test, val, train = (len(p) for p in group_indices(groups, [0.2, 0.1], seed))
        assert test > 0 and val > 0 and 2 * val - 5 <= test <= 2 * val + 5 and train >= 900, (seed, test, val)
    even = np.repeat(np.arange(50), 20)
    assert [len(p) for p in group_indices(even, [0.2, 0.1], 0)] == [200, 100, 700]
    assert (np.bincount(deal(np.full(10, 7), [35.0] * 2, 0, False)) == 5).all()  # folds: the same dealing
    ex = Examples(target=np.zeros(len(groups)), frame=pd.DataFrame({"g": groups}))
    scored = [len(s) for _, s in folds(ex, SplitSpec(group="g"), 5, False)]
    assert sorted(scored)[0] > 0 and sum(scored) == len(groups)


def test_one_date_cannot_be_split_in_time_and_a_run_never_empties_training():
    """C3: every row of one date sent all rows to test ([100, 0, 0]) and the advice was to raise the fractions."""
    from sw2.data.examples import Examples
    from sw2.data.split import carve_indices, ordered_indices
    from sw2.spec import SplitSpec

    ex = Examples(target=np.zeros(100), frame=pd.DataFrame({"d": ["2020-01-01"] * 100}))
    with pytest.raises(UserError, match="data.split.by: column 'd' holds one value"):
        carve_indices(ex, SplitSpec(by="d"), [0.2, 0.1], False)
    assert [len(p) for p in ordered_indices(np.array([0.0] * 50 + [1.0] * 50), [0.2, 0.1])] == [50, 0, 50]
    assert [len(p) for p in ordered_indices(np.arange(100.0), [0.2, 0.1])] == [20, 10, 70]


def test_thousands_separators_are_read_as_numbers(tmp_path):
    """C4: in a ;-file "1,000" was read as 1.0 and "1.234,56" stayed text; a quoted "1,037.5" stayed text."""
    files = {
        "thousand.csv": "n;x\n1,000;a\n2,000;b\n",  # no decimals: left as written, never 1.0
        "european.csv": "n;x\n1.234,56;a\n2,5;b\n",
        "english.csv": 'n,x\n"1,037.5",a\n2.5,b\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert read_table(tmp_path / "thousand.csv")["n"].tolist() == ["1,000", "2,000"]
    assert read_table(tmp_path / "european.csv")["n"].tolist() == [1234.56, 2.5]
    assert read_table(tmp_path / "english.csv")["n"].tolist() == [1037.5, 2.5]


def test_a_table_is_parsed_once_while_its_bytes_are_unchanged(tmp_path, monkeypatch):
    """D3: resolving a spec and preparing its data each parsed the whole file."""
    import sw2.data.sources.tables as tables
    from sw2.data.sources import load

    path = tmp_path / "t.csv"
    table(30).to_csv(path, index=False)
    calls = []
    real = pd.read_csv
    monkeypatch.setattr(tables.pd, "read_csv", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = read_table(path)
    first.loc[0, "x1"] = 99.0  # the caller's own copy
    again = load(DataSpec(path="t.csv"), tmp_path, "label").train.frame
    assert len(calls) == 1 and again["x1"].iloc[0] != 99.0
    table(30, seed=1).to_csv(path, index=False)  # changed bytes: read again
    assert read_table(path)["x1"].tolist() == table(30, seed=1)["x1"].tolist() and len(calls) == 2


def test_run_key_ignores_tracking_and_unset_new_fields():
    """C11: the run key hashed tracking and the new fields' defaults: a changed MLflow URI, or a checkpoint of
    an sw2 before them, was refused by --resume."""
    import hashlib

    import yaml

    from sw2.runs import run_key

    raw = {"data": {"path": "t.csv"}, "target": "label", "task": "classify"}
    key = run_key(parse_spec(raw), "p")
    assert key == run_key(parse_spec({**raw, "tracking": {"mlflow": "file:///tmp/elsewhere"}}), "p")
    assert key != run_key(parse_spec({**raw, "data": {"path": "t.csv", "sep": ";"}}), "p")
    before = parse_spec(raw).model_dump(mode="json")  # as an sw2 without the new fields wrote it
    del before["tracking"], before["data"]["sep"], before["data"]["encoding"]
    del before["data"]["split"]["by"], before["data"]["split"]["group"]
    assert key == hashlib.sha256((yaml.safe_dump(before, sort_keys=False) + "p").encode()).hexdigest()
