"""Column control: what sw2 reads each column as (sw2.data.columns), `inputs:` overriding it, dates as
features, ids left out with a WARN, a column derived from the target warned of, the task inferred from the
target, no silent target, and `sw2 spec --columns`."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import sw2
from sw2.api import resolve_spec
from sw2.data import prepare
from sw2.data.columns import column_kinds, resolve
from sw2.errors import UserError
from sw2.preflight.data_checks import columns
from sw2.spec import parse_spec
from sw2.tasks import TASKS
from tests.conftest import sw2_here


def houses(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Houses sold on dates, with a row number, a hash-like key, a price that grows with size and season, and
    `expensive`: the price cut at a threshold (a column derived from the target)."""
    rng = np.random.default_rng(seed)
    sold = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "key": [f"{v:016x}" for v in rng.integers(0, 2**62, n)],
            "sold": sold.strftime("%Y-%m-%d"),
            "size": rng.normal(100, 20, n).round(1),
            "town": rng.choice(["north", "south", "east"], n),
        }
    )
    summer = np.cos(2 * np.pi * (sold.day_of_year - 180) / 365.25)
    frame["price"] = (3 * frame["size"] + 60 * summer + rng.normal(0, 40, n)).round(2)
    frame["expensive"] = np.where(frame["price"] > frame["price"].quantile(0.6), "yes", "no")
    return frame


def kinds_of(frame: pd.DataFrame, inputs="auto", target: str = "price") -> dict[str, str]:
    return {k.name: k.kind for k in column_kinds(frame, inputs, target)}


def prepared(frame: pd.DataFrame, folder, **spec):
    frame.to_csv(folder / "h.csv", index=False)
    parsed, _ = resolve_spec({"data": {"path": "h.csv"}, "train": {"epochs": 1}, **spec}, folder)
    return prepare(parsed, folder, TASKS.get(parsed.task))


def test_each_column_is_judged_and_inputs_override_only_the_columns_named():
    frame = houses()
    assert kinds_of(frame) == {"row": "id", "key": "id", "sold": "date", "size": "number", "town": "category",
                               "expensive": "category"}  # fmt: skip
    declared = {"row": "number", "key": "category", "sold": "ignore", "size": "category", "town": "text"}
    assert kinds_of(frame, declared) == {"row": "number", "key": "category", "sold": "ignored", "size": "category",
                                         "town": "text", "expensive": "category"}  # fmt: skip
    got = {k.name: k.reason for k in column_kinds(frame, {"sold": "date"}, "price")}
    assert got["sold"] == "inputs: date" and got["row"] == "unique per row and in order (a row number)"
    assert got["key"].startswith("hash-like")
    with pytest.raises(UserError, match="inputs: column 'height' is not in the data"):
        column_kinds(frame, {"height": "number"}, "price")


def test_a_bad_input_kind_names_the_column_and_the_kinds():
    with pytest.raises(UserError) as err:
        parse_spec({"data": {"path": "h.csv"}, "inputs": {"town": "categroy"}})
    assert "inputs: column 'town': 'categroy' is not a kind of column (did you mean 'category'?)" in str(err.value)
    assert "number, category, text, date, ignore" in str(err.value)


def test_dates_become_features_and_predict_on_new_rows(tmp_path, caplog):
    """task: auto on a price infers regress with its line; the date is read as year, month, weekday, day of year
    (sin/cos) and elapsed days, kept in the bundle, and parsed the same way for new rows."""
    frame = houses()
    frame.drop(columns=["expensive"]).to_csv(tmp_path / "h.csv", index=False)
    spec = {"data": {"path": "h.csv"}, "target": "price", "model": {"name": "mlp"}, "train": {"epochs": 2}}
    with caplog.at_level(logging.INFO, logger="sw2"):
        bundle = sw2.train(spec, tmp_path / "b", root=tmp_path, check=False)
    assert "sw2: task: regress (inferred: target 'price' has 300 distinct numbers" in caplog.text
    assert "  sold  date      dates (e.g. '" in caplog.text and "  row   id  " in caplog.text  # the columns' table
    assert bundle.spec.task == "regress" and "r2" in bundle.metrics["test"]
    parts = [c["date"] for c in bundle.encoder.numeric if c["name"] == "sold"]
    assert parts == ["year", "month_sin", "month_cos", "weekday_sin", "weekday_cos", "yearday_sin", "yearday_cos",
                     "days"]  # fmt: skip
    assert {c["name"] for c in bundle.encoder.numeric} == {"sold", "size"}  # row and key left out
    assert {c["name"]: c["kind"] for c in bundle.metrics["data"]["columns"]}["key"] == "id"
    new = pd.DataFrame({"sold": ["2031-07-01", None, "not a date"], "size": [100.0, 120.0, 80.0], "town": "north"})
    got = bundle.predict(new)  # no row or key column: they are not inputs
    assert np.isfinite(got).all() and got.shape == (3,)
    np.testing.assert_allclose(sw2.load(bundle.path).predict(new), got)


def test_an_id_column_warns_and_is_left_out(tmp_path):
    p = prepared(houses().drop(columns=["expensive"]), tmp_path, target="price")
    got = {v.check: v for v in columns(p, "r2")}["id columns"]
    assert got.status == "WARN" and "'row' (unique per row and in order (a row number))" in got.message, got
    assert "'key' (hash-like" in got.message and "inputs: {row: number, key: category}" in got.message
    assert [c["name"] for c in p.encoder.numeric + p.encoder.categories if c["name"] in ("row", "key")] == []
    kept = prepared(houses().drop(columns=["expensive"]), tmp_path, target="price", inputs={"row": "number"})
    assert "row" in [c["name"] for c in kept.encoder.numeric]


def test_a_column_derived_from_the_target_warns(tmp_path):
    p = prepared(houses(), tmp_path, target="price")
    got = {v.check: v for v in columns(p, "r2")}["leaking column"]
    assert got.status == "WARN" and "'expensive' is the target cut at thresholds" in got.message, got
    rng = np.random.default_rng(1)
    frame = houses().drop(columns=["expensive"]).assign(price=rng.normal(300, 60, 300))  # the rest tell nothing
    frame["appraisal"] = frame["price"] + rng.normal(0, 15, len(frame))  # a noisy copy: far better than the rest
    got = {v.check: v for v in columns(prepared(frame, tmp_path, target="price"), "r2")}["leaking column"]
    assert got.status == "WARN" and "'appraisal' alone predicts the target far better" in got.message, got
    honest = prepared(houses().drop(columns=["expensive"]), tmp_path, target="price")
    assert {v.check: v for v in columns(honest, "r2")}["leaking column"].status == "PASS"


def test_task_inferred_and_a_wrong_task_gets_advice_about_the_task(tmp_path, caplog):
    houses().to_csv(tmp_path / "h.csv", index=False)
    with caplog.at_level(logging.INFO, logger="sw2"):
        spec = resolve(parse_spec({"data": {"path": "h.csv"}, "target": "expensive"}), tmp_path)
    assert (
        spec.task == "classify" and "task: classify (inferred: target 'expensive' has 2 distinct values" in caplog.text
    )
    spec = parse_spec({"data": {"path": "h.csv"}, "target": "price", "task": "classify"})
    with pytest.raises(UserError, match="target 'price' has 300 distinct numbers: use task: regress"):
        prepare(spec, tmp_path, TASKS.get("classify"))


def test_no_target_names_the_columns_to_choose_from(tmp_path, caplog):
    houses().to_csv(tmp_path / "h.csv", index=False)
    with pytest.raises(UserError) as err:
        resolve(parse_spec({"data": {"path": "h.csv"}}), tmp_path)
    assert "the spec names no target: and the data has no 'label' column" in str(err.value)
    assert "one of row, key, sold, size, town, price, expensive" in str(err.value)
    houses().rename(columns={"expensive": "label"}).to_csv(tmp_path / "h.csv", index=False)
    with caplog.at_level(logging.INFO, logger="sw2"):
        spec = resolve(parse_spec({"data": {"path": "h.csv"}}), tmp_path)
    assert spec.target == "label" and "target: 'label' (the spec names none" in caplog.text


def test_spec_columns_prints_the_kinds_without_training(tmp_path):
    houses().to_csv(tmp_path / "h.csv", index=False)
    res = sw2_here("spec", "--columns", "h.csv", "--target", "price", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "task: regress (target 'price' has 300 distinct numbers)" in res.stdout
    lines = res.stdout.splitlines()
    assert "  row        id        unique per row and in order (a row number)" in lines, lines
    assert "  sold       date      dates (e.g. '" in res.stdout and "price " not in res.stdout
    assert not (tmp_path / "runs").exists()
    res = sw2_here("spec", "--columns", "h.csv", "--target", "cost", cwd=tmp_path)
    assert res.returncode == 2 and "no column 'cost'" in res.stderr


# ---- review mends (unit level, no training) ------------------------------------------------------------
def test_numbers_with_thousands_separators_are_no_dates_and_no_ids():
    """C4: "1,037.5" was judged a date (the year 2037) and unique rising "1.037,00" an id (dropped)."""
    from sw2.data.columns import _may_be_dates

    rising = pd.Series([f"{1000 + 37 * i:,}.5" for i in range(40)])  # 1,000.5 1,037.5 ...
    european = rising.str.replace(",", "X").str.replace(".", ",").str.replace("X", ".")  # 1.000,5 1.037,5 ...
    for values in (rising, european):
        assert not _may_be_dates(values), values.iloc[1]
        assert kinds_of(pd.DataFrame({"n": values, "price": 1.0})) == {"n": "category"}, values.iloc[1]
    for dates in (["2020-01-02"], ["02.01.2020"], ["Jan 5, 2020"], ["2020-03"], ["5/1/20 10:00"]):
        assert _may_be_dates(pd.Series(dates * 30)), dates


def test_a_rising_measurement_is_a_number_and_a_row_count_an_id():
    """C6: a sorted unique integer feature (years 1980..2019) was dropped as a row id."""
    frame = pd.DataFrame({"year": np.arange(1980, 2020), "row": np.arange(1, 41), "order_id": np.arange(5000, 5040)})
    subset = pd.DataFrame({"n": np.sort(np.random.default_rng(0).choice(1000, 700, replace=False))})  # a split's rows
    assert kinds_of(frame.assign(price=1.0)) == {"year": "number", "row": "id", "order_id": "id"}
    assert kinds_of(subset.assign(price=1.0)) == {"n": "id"}


def test_parse_dates_refuses_now_impossible_years_and_long_values():
    """C7: "now"/"today" parsed as the current time and "-1" as the year -1; S2: a long value held the parser
    (quadratic) for minutes."""
    import time

    from sw2.data.dates import parse_dates

    for fmt in (None, "mixed", "%Y-%m-%d"):
        parsed, _ = parse_dates(pd.Series(["2020-01-02", "now", "today", "-1", "3000-01-01", None] * 4), fmt)
        assert parsed.notna().tolist() == [True, False, False, False, False, False] * 4, fmt
    start = time.perf_counter()
    for value in ("2020-01-0" + "1" * 10**6, "1" * 10**5):
        assert parse_dates(pd.Series([value]), "mixed")[0].isna().all()
        assert parse_dates(pd.Series([value, "2020-01-01"]))[0].notna().tolist() == [False, True]
    assert time.perf_counter() - start < 1


def test_a_datetime_column_keeps_one_format_for_every_batch():
    """C5: a column already of dates (Parquet, JSON) saved no format, so each predicted batch guessed its own:
    "01/02/2020" alone was 2 January, beside "13/02/2020" 1 February."""
    from sw2.data.dates import parse_dates
    from sw2.data.encode import _date_stats

    train = pd.Series(pd.date_range("2020-01-01", periods=30), name="d")
    assert parse_dates(train)[1] == "ISO8601"
    fmt = _date_stats(train, "d")[0]["format"]
    alone, beside = (parse_dates(pd.Series(batch), fmt)[0] for batch in (["2020-02-01"], ["2020-02-01", "2020-02-13"]))
    assert alone.iloc[0] == beside.iloc[0] == pd.Timestamp("2020-02-01", tz="UTC")


def test_a_judged_date_column_is_parsed_once(monkeypatch):
    """D4: column_kinds and the encoder each parsed every date column in full; the encoder now takes the values
    judging parsed, and reads the same numbers from them."""
    import sw2.data.encode as encode
    from sw2.data.examples import Examples

    frame = houses().drop(columns=["price", "expensive"])
    kinds = column_kinds(frame, "auto", "price")
    dated = next(k for k in kinds if k.kind == "date")
    assert dated.dates is not None and dated.date_format == "%Y-%m-%d" and "dates" not in dated.to_json()
    ex = Examples(target=np.zeros(len(frame)), frame=frame)
    fresh = encode.Encoder.fit(ex, None, [type(k)(k.name, k.kind, k.reason) for k in kinds]).numeric

    def no_second_parse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(encode, "parse_dates", no_second_parse)
    assert encode.Encoder.fit(ex, None, kinds).numeric == fresh


def test_column_names_print_on_their_own_line():
    """S1: a column name holding \\r, \\x85 or \\u2028 ended its line in `sw2 spec --columns` and in a YAML comment."""
    from sw2.data.columns import kinds_table, printable

    frame = pd.DataFrame({"a\rb\x85c\u2028d\u2029e\x1b[2J": np.arange(30) % 3, "价格": 1.0, "price": 1.0})
    lines = kinds_table(column_kinds(frame, "auto", "price"))
    assert lines[0].startswith("  a\\rb\\x85c\\u2028d\\u2029e\\x1b[2J  number") and lines[0].isprintable(), lines
    assert len(lines) == 2 and lines[1].startswith("  价格") and printable("价格 x") == "价格 x"
