"""Ensembles: `sw2 ensemble` averages bundles of one task and preprocessing into a bundle that evaluates,
predicts, runs its model tests and exports like any other; `train.snapshots` cycles the lr and averages the
run's snapshots; members that cannot be averaged are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine

import sw2
from sw2.bundle import Bundle
from tests.conftest import sw2_here
from tests.test_bad_input import check_refused

WINE = {
    "name": "wine",
    "data": {"source": "package", "name": "wine", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
    "task": "classify",
    "model": {"name": "mlp", "widths": [32, 32]},
    "train": {"epochs": 15, "batch_size": 32, "lr": 0.003, "threads": 1},
    "tests": [{"kind": "metric", "metric": "accuracy", "min": 0.8}],
}


def wine(seed: int, **train) -> dict:
    return {**WINE, "train": {**WINE["train"], "seed": seed, **train}}


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Bundle]:
    runs = tmp_path_factory.mktemp("runs")
    return [sw2.train(wine(seed), runs / f"wine{seed}", check=False) for seed in range(3)]


def test_ensemble_bundle_scores_predicts_tests_and_exports(members: list[Bundle], tmp_path: Path) -> None:
    res = sw2_here("ensemble", *(str(b.path) for b in members), "--out", str(tmp_path / "ens"))
    assert res.returncode == 0, res.stderr
    b = Bundle(tmp_path / "ens")
    assert json.loads((b.path / "model.json").read_text())["name"] == "ensemble"
    accs = [m.metrics["test"]["accuracy"] for m in members]
    assert b.metrics["test"]["accuracy"] >= min(accs)
    assert b.metrics["training"]["members"]["test"] == accs
    assert (b.path / "tests.xml").is_file() and (b.path / "report.html").is_file()
    assert (b.path / "provenance.json").is_file()  # its own signed data record: sw2 report/test need no --spec
    rows = load_wine(as_frame=True).frame.drop(columns="target").head(20)
    probs = b.predict_proba(rows)
    assert probs.shape == (20, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    mean = np.mean([m.predict_proba(rows) for m in members], axis=0)  # the average of the members' softmax
    assert np.allclose(probs, mean, atol=1e-5)
    assert sw2_here("test", str(b.path)).returncode == 0
    pytest.importorskip("onnxruntime")
    assert sw2_here("export", str(b.path), "--format", "onnx").returncode == 0
    assert (Bundle(b.path, backend="onnx").predict(rows) == b.predict(rows)).all()


def test_members_that_cannot_be_averaged_are_refused(members: list[Bundle], tmp_path: Path) -> None:
    other_split = sw2.train({**WINE, "data": {**WINE["data"], "split": {"val": 0.2, "test": 0.2, "seed": 1}}},
                            tmp_path / "other", check=False)  # fmt: skip
    regress = sw2.train(
        {"data": {"source": "package", "name": "diabetes"}, "task": "regress", "train": {"epochs": 2}},
        tmp_path / "reg",
        check=False,
    )
    cases = [
        ([members[0]], "two or more"),
        ([members[0], regress], "one task"),
        ([members[0], other_split], "preprocessing differs"),
    ]
    for bundles, needle in cases:
        res = sw2_here("ensemble", *(str(b.path) for b in bundles), "--out", str(tmp_path / "e"))
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert not (tmp_path / "e").exists()


def test_snapshot_ensemble_from_one_run(tmp_path: Path) -> None:
    b = sw2.train(wine(0, epochs=24, snapshots=3, warmup=0.1), tmp_path / "snap", check=False)
    arch = json.loads((b.path / "model.json").read_text())
    assert arch["name"] == "ensemble" and len(arch["kwargs"]["members"]) == 3
    assert b.metrics["test"]["accuracy"] >= 0.85
    lrs = [json.loads(line)["lr"] for line in (b.path / "history.jsonl").read_text().splitlines()]
    assert any(later > earlier * 2 for earlier, later in zip(lrs, lrs[1:])), f"the lr never restarted: {lrs}"


def test_snapshots_refuse_early_stopping_and_language_models(tmp_path: Path) -> None:
    for case in ("es", "lm"):
        (tmp_path / case).mkdir()
    check_refused(tmp_path / "es", wine(0, snapshots=3, early_stopping={"patience": 2}), "train.snapshots")
    lm = {"data": {"path": "in.txt"}, "task": "generate_text", "text": {"tokenizer": "char"},
          "model": {"name": "gpt"}, "train": {"snapshots": 2}}  # fmt: skip
    check_refused(tmp_path / "lm", lm, "train.snapshots", "cannot be averaged")
    bad = {**wine(0), "model": {"name": "ensemble"}}
    (tmp_path / "m").mkdir()
    check_refused(tmp_path / "m", bad, "model: ensemble")
