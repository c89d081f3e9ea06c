"""What a spec or a bundle from someone else can make sw2 do: no code runs from a model test's `where:`,
no file outside the bundle is read on its say-so, and its spec does not choose where sw2 writes."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sw2
import sw2.api
from sw2 import where
from sw2.spec import parse_spec
from tests.conftest import make_image_folder, write_spec
from tests.conftest import sw2_here as run_sw2

ESCAPES = [
    # the escape: a column's class reaches the module globals, then os.system
    "x1.__class__.__init__.__globals__.get('sys').modules.get('os').system('touch MARKER') == 0",
    "__import__('os').system('touch MARKER') == 0",
    "@pd.io.common.os.system('touch MARKER')",  # pandas eval's local-variable syntax
    "x1.str.len() > 0",
    "x1[0] == 1",
    "(lambda: __import__('os'))() == 1",
    "[c for c in ().__class__.__bases__[0].__subclasses__()] == 1",
    "open('MARKER', 'w').write('x') > 0",
    "f'{x1.__class__}' == ''",
    "(x1 := 1) == 1",
    "9 ** 9 ** 9 > 1",
    "'a' * 10 ** 9 == 'b'",
    "__builtins__ == 1",
    "isna(x1.__class__)",
    "(" * 600 + "x1" + ")" * 600 + " > 1",
]


def table(folder: Path, n: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": rng.choice(["red", "blue"], n), "y": (x1 + x2 > 0).astype(int)})
    frame.to_csv(folder / "rows.csv", index=False)
    return folder / "rows.csv"


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("expression", ESCAPES)
def test_where_escapes_are_refused_at_validation(expression):
    spec = {
        "data": {"path": "rows.csv"},
        "target": "y",
        "tests": [{"metric": "accuracy", "min": 0, "where": expression}],
    }
    with pytest.raises(sw2.UserError, match=r"tests\.0\.where: .*; use column names") as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)


def test_where_escape_in_a_spec_runs_nothing(tmp_path):
    table(tmp_path)
    spec = {"data": {"path": "rows.csv"}, "target": "y", "train": {"epochs": 1}}
    spec["tests"] = [{"metric": "accuracy", "min": 0, "where": ESCAPES[0]}]
    write_spec(tmp_path, spec)
    before = files(tmp_path)
    for args in (["train", "spec.yaml", "--quiet", "--out", "b"], ["check", "spec.yaml"], ["spec", "spec.yaml"]):
        res = run_sw2(*args, cwd=tmp_path)
        assert res.returncode == 2 and res.stderr.startswith("error: spec.yaml: tests.0.where: "), res.stderr
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert files(tmp_path) == before and not (tmp_path / "MARKER").exists()


@pytest.fixture(scope="module")
def table_bundle(tmp_path_factory) -> Path:
    """A small table bundle with a passing `where:` test, trained once (the spec's data lies beside it)."""
    folder = tmp_path_factory.mktemp("hostile")
    table(folder)
    spec = {
        "name": "rows",
        "data": {"path": "rows.csv"},
        "target": "y",
        "train": {"epochs": 20, "batch_size": 16, "lr": 0.01},
        "tests": [{"metric": "accuracy", "min": 0.7, "where": "x1 > 0 and colour in ['red', 'blue']"}],
    }
    write_spec(folder, spec)
    res = run_sw2("train", "spec.yaml", "--quiet", "--no-check", "--out", "b", cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder


def tampered(folder: Path, name: str, change) -> Path:
    """A copy of the bundle `folder/b` whose spec.yaml `change` edited (as someone sharing it could)."""
    copy = folder / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder / "b", copy)
    raw = yaml.safe_load((copy / "spec.yaml").read_text())
    change(raw)
    (copy / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy


def test_where_escape_in_a_shared_bundle_runs_nothing(table_bundle):
    def escape(raw):
        raw["tests"][0]["where"] = ESCAPES[0]

    tampered(table_bundle, "evil", escape)
    for args in (["test", "evil"], ["predict", "evil", "rows.csv"]):  # the spec is refused when the bundle loads
        res = run_sw2(*args, cwd=table_bundle)
        assert res.returncode == 2 and "tests.0.where: the only calls are isna" in res.stderr, (args, res.stderr)
        assert res.stderr.count("\n") == 1
    assert not (table_bundle / "MARKER").exists()


def test_bundle_cannot_make_sw2_read_files_outside_itself(table_bundle, monkeypatch):
    secret = table_bundle.parent / "secret.csv"
    secret.write_text("x1,x2,colour,y\n1,2,red,1\n")

    def outside(raw):
        raw["data"]["path"] = "../../secret.csv"

    def absolute(raw):
        raw["data"]["path"] = str(secret)

    def examples(raw):
        raw["tests"].append({"kind": "examples", "path": str(secret)})

    read = []
    with monkeypatch.context() as patch:  # the CLI runs in this process: it sees the patch
        patch.setattr(importlib.import_module("sw2.tasks.supervised"), "prepare", lambda *a, **k: read.append(a))
        for name, change in (("up", outside), ("abs", absolute), ("ex", examples)):
            bundle = tampered(table_bundle, name, change)
            before = files(table_bundle), secret.stat().st_mtime_ns
            for args in (["test", name], ["report", name]):
                res = run_sw2(*args, cwd=table_bundle)
                assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
                assert (
                    "does not lie inside the bundle, and a bundle cannot make sw2 read files outside itself"
                    in res.stderr
                )
                assert "give your spec file with --spec, or the data with --data" in res.stderr
            for call in (sw2.verify, sw2.report):
                with pytest.raises(sw2.UserError, match="not lie inside the bundle"):
                    call(bundle)
            assert (files(table_bundle), secret.stat().st_mtime_ns) == before, "nothing written, nothing changed"
    assert not read, "no data was prepared from a path the bundle named"
    # the spec the user trained from (its own files) and --data are fine; the default tests.xml stays untouched
    res = run_sw2("test", "b", "--spec", "spec.yaml", cwd=table_bundle)
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr
    res = run_sw2("test", "b", "--data", "rows.csv", cwd=table_bundle)
    assert res.returncode == 0, res.stderr


def test_the_data_a_bundle_carries_inside_itself_is_read(table_bundle):
    def inside(raw):
        raw["data"]["path"] = "rows.csv"

    bundle = tampered(table_bundle, "carries", inside)
    shutil.copy(table_bundle / "rows.csv", bundle / "rows.csv")
    res = run_sw2("test", "carries", cwd=table_bundle)
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr
    (bundle / "rows.csv").unlink()
    os.symlink(table_bundle / "rows.csv", bundle / "rows.csv")  # a link out of the bundle is outside it
    res = run_sw2("test", "carries", cwd=table_bundle)
    assert res.returncode == 2 and "holds a link to a file outside the bundle" in res.stderr


def test_spec_of_another_task_or_target_is_refused(table_bundle):
    raw = yaml.safe_load((table_bundle / "spec.yaml").read_text())
    tests = [{"kind": "metric", "metric": "rmse", "max": 1.0}]  # a valid spec of its own task
    write_spec(table_bundle, {**raw, "target": "x2", "task": "regress", "tests": tests}, "other.yaml")
    res = run_sw2("test", "b", "--spec", "other.yaml", cwd=table_bundle)
    assert res.returncode == 2 and "differ from the bundle's" in res.stderr, res.stderr


def test_bundle_spec_does_not_choose_where_sw2_writes(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=8)
    spec = {"data": {"path": "imgs", "cache_dir": str(tmp_path / "cache")}, "train": {"epochs": 1}}
    write_spec(tmp_path, spec)
    res = run_sw2("train", "spec.yaml", "--quiet", "--no-check", "--out", "b", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    raw = yaml.safe_load((tmp_path / "b" / "spec.yaml").read_text())
    raw["data"]["cache_dir"] = str(tmp_path / "planted")
    (tmp_path / "b" / "spec.yaml").write_text(yaml.safe_dump(raw))
    assert sw2.load(tmp_path / "b").spec.data.cache_dir is None
    make_image_folder(tmp_path / "new", per_class=3, seed=5)
    res = run_sw2("eval", "b", "--data", "new", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "planted").exists()


GRAMMAR = pd.DataFrame(
    {
        "age": [20, 35, 50, np.nan, 64],
        "island": ["Dream", "Biscoe", None, "Dream", "Torgersen"],
        "body mass": [3000, 4200, 3900, 5000, 4100],
        "ok": [True, False, True, True, False],
    }
)


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("age > 30", GRAMMAR["age"] > 30),
        ("age >= 20 and island == 'Dream'", (GRAMMAR["age"] >= 20) & (GRAMMAR["island"] == "Dream")),
        ("(age < 30) | (island == 'Biscoe')", (GRAMMAR["age"] < 30) | (GRAMMAR["island"] == "Biscoe")),
        ("30 <= age < 60", (GRAMMAR["age"] >= 30) & (GRAMMAR["age"] < 60)),
        ("island in ['Dream', 'Biscoe']", GRAMMAR["island"].isin(["Dream", "Biscoe"])),
        ("island not in ('Dream',)", ~GRAMMAR["island"].isin(["Dream"])),
        ("not age > 30", ~(GRAMMAR["age"] > 30)),
        ("~(age > 30) & ok", ~(GRAMMAR["age"] > 30) & GRAMMAR["ok"]),
        ("isna(age) or isna(island)", GRAMMAR["age"].isna() | GRAMMAR["island"].isna()),
        ("notna(island) and age != 35", GRAMMAR["island"].notna() & (GRAMMAR["age"] != 35)),
        ("`body mass` > 4000", GRAMMAR["body mass"] > 4000),
        ("age > -1.5e1", GRAMMAR["age"] > -15),
        ("ok == True", GRAMMAR["ok"]),
    ],
)
def test_where_grammar_selects_the_rows_pandas_would(expression, expected):
    assert where.parse(expression).evaluate(GRAMMAR).tolist() == expected.fillna(False).astype(bool).tolist()


@pytest.mark.parametrize(
    "expression, message",
    [
        ("height > 3", "no column 'height'"),
        ("island > 3", "cannot compare"),
        ("age", "not a condition"),
        ("island and age > 3", "column 'island' is not a condition"),
    ],
)
def test_where_on_rows_it_does_not_fit(expression, message):
    with pytest.raises(ValueError, match=message):
        where.parse(expression).evaluate(GRAMMAR)


def test_bundle_with_a_link_out_of_itself_is_refused(table_bundle):
    """A bundle whose own file (curves.png, spec.yaml, ...) links elsewhere would have sw2 read, or embed in a
    report, a file of the user's: refused at load."""
    bundle = tampered(table_bundle, "linked", lambda raw: None)
    (bundle / "curves.png").unlink()
    os.symlink(table_bundle / "rows.csv", bundle / "curves.png")
    before = files(table_bundle)
    res = run_sw2("report", "linked", cwd=table_bundle)
    assert res.returncode == 2 and "holds a link to a file outside the bundle" in res.stderr, res.stderr
    assert files(table_bundle) == before


def test_junit_and_report_out_are_checked_before_any_work(table_bundle):
    before = files(table_bundle)
    for args, needle in (
        (["test", "b", "--spec", "spec.yaml", "--junit", "b"], "is a folder"),
        (["test", "b", "--spec", "spec.yaml", "--junit", "no/such/x.xml"], "does not exist"),
        (["test", "b", "--data", "rows.csv", "--junit", "rows.csv"], "is an input of this command"),
        (["report", "b", "--spec", "spec.yaml", "--out", "b/model.json"], "inside the bundle"),
    ):
        res = run_sw2(*args, cwd=table_bundle)
        assert res.returncode == 2 and needle in res.stderr and res.stderr.count("\n") == 1, (args, res.stderr)
    assert files(table_bundle) == before


def test_out_older_bundle_holding_a_user_file_is_refused(table_bundle):
    (table_bundle / "b" / "notes.txt").write_text("mine")
    try:
        res = run_sw2("train", "spec.yaml", "--quiet", "--out", "b", cwd=table_bundle)
        assert res.returncode == 2 and "also holds notes.txt, which sw2 did not write" in res.stderr, res.stderr
        assert (table_bundle / "b" / "notes.txt").read_text() == "mine"
    finally:
        (table_bundle / "b" / "notes.txt").unlink()


@pytest.mark.parametrize(
    "expression, message",
    [("~" * 990 + "age", "nested more than 32 deep"), ("age in [island]", "numbers and strings only")],
)
def test_where_nesting_and_lists_are_bounded(expression, message):
    with pytest.raises(ValueError, match=message):
        where.parse(expression)
