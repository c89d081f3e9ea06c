"""Everyday commands on a user's own files: `sw2 init` writes a spec that explains itself and trains; `sw2 report`
and `sw2 test` work from the bundle alone (its signed record of where the data came from, sw2.provenance) and
say what to pass when the file moved or changed; `--version`, `--debug` after the command, help everywhere."""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sw2
from sw2.cli import parser
from sw2.spec import load_spec
from tests.conftest import make_image_folder, sw2_here


def rows_csv(folder: Path, n: int = 160) -> Path:
    """A user's CSV: two numbers, a category and a row id; the target is the sign of the numbers' sum."""
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({"row": np.arange(1, n + 1), "x1": x1, "x2": x2, "colour": rng.choice(["red", "blue"], n)})
    frame["y"] = (x1 + x2 > 0).astype(int)
    frame.to_csv(folder / "rows.csv", index=False)
    return folder / "rows.csv"


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    """A folder holding rows.csv, the spec `sw2 init` wrote for it, and the bundle b trained from that spec (the
    model fixed to a small mlp for 2 epochs, a model test added), under its own sw2 key in cache/."""
    folder = tmp_path_factory.mktemp("everyday")
    rows_csv(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SW2_CACHE", str(folder / "cache"))
        res = sw2_here("init", "rows.csv", "--target", "y", cwd=folder)
        assert res.returncode == 0 and "sw2 train spec.yaml" in res.stdout, res.stdout + res.stderr
        written = (folder / "spec.yaml").read_text()
        with (folder / "spec.yaml").open("a") as f:
            f.write("model: {name: mlp}\ntrain: {epochs: 2, batch_size: 8, lr: 0.01}\n")  # seconds, not a search
            f.write("tests: [{metric: accuracy, min: 0.8}]\n")
        res = sw2_here("train", "spec.yaml", "--quiet", "--no-check", "--out", "b", cwd=folder)
        assert res.returncode == 0, res.stderr
    (folder / "written.yaml").write_text(written)
    return folder


def test_init_writes_a_spec_that_explains_itself_and_trains(own):
    text = (own / "written.yaml").read_text()
    assert "task: classify" in text and "target 'y' has 2 distinct whole numbers" in text
    assert "\ntarget: y\n" in text and "  path: rows.csv  # relative to this file's folder" in text
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("#  ")}  # the column table
    assert "number" in lines["x1"] and "category" in lines["colour"] and " id " in lines["row"], lines
    assert "--cv 5" in text and "sw2 check spec.yaml" in text and "sw2 train spec.yaml" in text
    assert all(len(line) <= 110 for line in text.splitlines())
    spec, _ = load_spec(own / "spec.yaml")
    assert spec.task == "classify" and spec.data.split.test == 0.2
    bundle = sw2.load(own / "b")
    assert bundle.metrics["test"]["accuracy"] >= 0.85, bundle.metrics["test"]


def test_report_and_test_work_from_the_bundle_alone(own, monkeypatch):
    monkeypatch.setenv("SW2_CACHE", str(own / "cache"))  # the key the bundle was signed with
    (own / "b" / "report.html").unlink()
    res = sw2_here("report", "b", cwd=own)  # rows.csv lies beside the bundle, not inside it
    assert res.returncode == 0 and (own / "b" / "report.html").stat().st_size > 10_000, res.stderr
    res = sw2_here("test", "b", cwd=own)
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr
    assert sw2.verify(own / "b")[0].passed


def test_moved_changed_or_foreign_data_says_what_to_pass(own, monkeypatch):
    monkeypatch.setenv("SW2_CACHE", str(own / "cache"))
    data, kept = own / "rows.csv", own / "kept.csv"
    shutil.copy(data, kept)
    try:
        with data.open("a") as f:
            f.write("999,0.5,0.5,red,1\n")
        res = sw2_here("test", "b", cwd=own)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert f"its data.path {data.resolve()} changed since training (" in res.stderr
        assert "bytes then" in res.stderr and "--spec SPEC" in res.stderr and "--data FILE" in res.stderr
        data.unlink()
        res = sw2_here("report", "b", cwd=own)
        assert res.returncode == 2 and f"was {data.resolve()} at training, and nothing is there now" in res.stderr
        assert "--spec SPEC" in res.stderr and "--data FILE" in res.stderr
    finally:
        shutil.copy(kept, data)
    monkeypatch.setenv("SW2_CACHE", str(own / "another-user"))  # no key, or another one: the record is not trusted
    res = sw2_here("test", "b", cwd=own)
    assert res.returncode == 2 and "a bundle cannot make sw2 read files outside itself" in res.stderr
    assert "no key at" in res.stderr and "give your spec file with --spec, or the data with --data" in res.stderr
    res = sw2_here("test", "b", "--spec", "spec.yaml", cwd=own)  # the user's spec still works, key or not
    assert res.returncode == 0, res.stderr


def test_version_and_debug_after_the_command(tmp_path):
    res = sw2_here("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"sw2 {importlib.metadata.version('sw2')}"
    res = sw2_here("report", str(tmp_path / "nope"))
    assert res.returncode == 2 and "no such bundle folder" in res.stderr
    for args in (["--debug", "report", str(tmp_path / "nope")], ["report", str(tmp_path / "nope"), "--debug"]):
        with pytest.raises(sw2.UserError, match="no such bundle folder"):  # --debug: the traceback, either place
            sw2_here(*args)


def test_every_positional_argument_has_help():
    def walk(p: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [] if action.help else [f"{path} COMMAND"]
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{path} {name}")
            elif not action.option_strings and not action.help:
                missing.append(f"{path} {action.dest}")
        return missing

    assert walk(parser(), "sw2") == []
    assert len(parser()._subparsers._group_actions[0].choices) >= 15  # every command was walked


def test_init_for_an_image_folder_and_what_it_refuses(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=3)
    res = sw2_here("init", "imgs", "--out", "img.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "img.yaml").read_text()
    assert "target:" not in text.replace("# ", "") and "2 classes (images each): h (3), v (3)" in text
    assert load_spec(tmp_path / "img.yaml")[0].task == "classify"
    rows_csv(tmp_path, n=30)
    refused = [
        (["init", "imgs", "--out", "img.yaml"], "already exists; give another path, or add --force"),
        (["init", "imgs", "--target", "y", "--out", "x.yaml"], "drop --target"),
        (["init", "rows.csv", "--target", "why", "--out", "x.yaml"], "not a column of rows.csv; did you mean 'y'?"),
        (["init", "rows.csv", "--out", "x.yaml"], "give the column to predict with --target, one of: row, x1"),
        (["init", "rows.csv", "--target", "y", "--out", "rows.csv", "--force"], "is the data or inside it"),
        (["init", "nope.csv", "--target", "y"], "no such file or folder"),
    ]
    for args, said in refused:
        res = sw2_here(*args, cwd=tmp_path)
        assert res.returncode == 2 and said in res.stderr, (args, res.stderr)
    assert not (tmp_path / "x.yaml").exists() and not (tmp_path / "spec.yaml").exists()
    res = sw2_here("init", "imgs", "--out", "img.yaml", "--force", cwd=tmp_path)
    assert res.returncode == 0, res.stderr


def test_spec_answers_go_to_stdout_as_written_or_as_one_json_object(tmp_path):
    """`sw2 spec` writes each answer as it is (a column named like rich markup stays as named), or under
    --log-format json one JSON object; the CLI's bare prints all go to stderr."""
    import ast
    import json

    import sw2.cli

    calls = [n for n in ast.walk(ast.parse(Path(sw2.cli.__file__).read_text())) if isinstance(n, ast.Call)]
    bare = [n.lineno for n in calls if ast.unparse(n.func) == "print" and "file=sys.stderr" not in ast.unparse(n)]
    assert not bare, f"sw2/cli.py: print to stdout at lines {bare}: use console or sys.stdout.write"
    for flag, kind, field in (("--schema", "schema", "schema"), ("--reference", "reference", "markdown")):
        res = sw2_here("spec", flag, "--log-format", "json")
        assert res.returncode == 0, res.stderr
        (event,) = (json.loads(line) for line in res.stdout.splitlines())
        assert event["event"] == kind and event[field], event
    assert json.loads(sw2_here("spec", "--schema").stdout)["type"] == "object"
    rows = pd.DataFrame({"[bold]x": np.arange(40) % 7, "y": np.arange(40) % 2})
    rows.to_csv(tmp_path / "t.csv", index=False)
    res = sw2_here("spec", "--columns", "t.csv", "--target", "y", cwd=tmp_path)
    assert res.returncode == 0 and "[bold]x" in res.stdout and res.stdout.startswith("task: "), res.stdout


def test_the_leak_check_fits_a_wide_table_in_bounded_rows_and_features(monkeypatch):
    """The leak check's ridge fit on "all the other columns" reads at most LEAK_ROWS rows and LEAK_FEATURES
    features (a category keeps its most frequent values, LEAK_VALUES at least, else no fit): hundreds of
    category columns of 60 values never build a rows x 18,000 matrix. Within the bounds it still sees what
    the other columns know of the target."""
    from types import SimpleNamespace

    import torch

    from sw2.preflight import data_checks

    monkeypatch.setattr(data_checks, "LEAK_ROWS", 1_500)
    monkeypatch.setattr(data_checks, "LEAK_FEATURES", 200)
    shapes = []
    features = data_checks._features
    monkeypatch.setattr(data_checks, "_features", lambda *a: shapes.append(features(*a).shape) or features(*a))
    rng = np.random.default_rng(0)

    def prepared(n_cats: int, rows: int) -> SimpleNamespace:
        """Two numbers and `n_cats` categories of 60 values but the first (6 values), whose parity is the class."""
        cats = rng.integers(1, 61, size=(rows, n_cats))
        cats[:, 0] = rng.integers(1, 7, rows)
        num = rng.normal(size=(rows, 2)).astype(np.float32)
        y = torch.from_numpy((cats[:, 0] % 2).astype(np.int64))
        num, cats = torch.from_numpy(num), torch.from_numpy(cats)
        parts = (slice(-500), slice(-500, None))
        train, val = (SimpleNamespace(inputs={"num": num[s], "cat": cats[s]}, target=y[s]) for s in parts)
        vocab = ["?"] + [str(v) for v in range(60)]
        encoder = SimpleNamespace(numeric=[{"name": "n0"}, {"name": "n1"}],
                                  categories=[{"name": f"c{i}", "vocab": vocab} for i in range(n_cats)])  # fmt: skip
        return SimpleNamespace(encoder=encoder, train=train, val=val)

    assert data_checks._others_skill(prepared(20, 4_000), "n0", classify=True) > 0.95  # 20 x 60 values: top 9
    assert shapes == [(1_500, 1 + 19 * 9 + 6), (500, 1 + 19 * 9 + 6)], shapes
    assert data_checks._others_skill(prepared(300, 1_000), "n0", classify=True) is None  # 300 x 60: no fit
    assert len(shapes) == 2


def test_init_writes_no_field_a_hostile_file_names(tmp_path):
    """S1: a column or class name holding \\r (or \\x85, \\u2028, \\u2029, which YAML also reads as a line's end)
    ended its comment, so `sw2 init` wrote the attacker's field (here: an MLflow server) into the user's spec."""
    import yaml

    from sw2.starter import _scalar, starter_spec

    field = "tracking: {mlflow: 'http://evil.example:5000'} #"
    for end in ("\r", "\x85", "\u2028", "\u2029"):
        frame = pd.DataFrame({f"a{end}{field}": np.arange(30) % 3, "label": [f"x{end}{field}", "y"] * 15})
        frame.to_json(tmp_path / "h.jsonl", orient="records", lines=True)
        text = starter_spec(tmp_path / "h.jsonl", tmp_path / "s.yaml", None)
        written = yaml.safe_load(text)
        assert list(written) == ["name", "data", "task", "target"], (repr(end), written)
        assert yaml.safe_load(_scalar(f"a{end}b")) == f"a{end}b"  # a name written as a field reads back as itself
