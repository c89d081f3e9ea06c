"""`sw2 doctor`: out-of-fold probabilities + confident learning find labels flipped on purpose."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml

import sw2
from benchmarks.label_errors import noisy_mnist
from tests.conftest import ROOT, need_dataset, sw2_here, write_spec
from tests.conftest import sw2 as run_cli


def test_doctor_finds_flipped_mnist_labels(tmp_path, monkeypatch):
    """6,000 MNIST training images, 2% of labels flipped: most of the 120 lowest-ranked are the flipped ones."""
    monkeypatch.setenv("SW2_DATASETS", str(need_dataset("mnist").parent))
    flipped = noisy_mnist(tmp_path / "mnist", share=0.02, seed=0, limit=6000)
    spec = yaml.safe_load((ROOT / "examples" / "mnist.yaml").read_text())
    spec["data"] = {"path": str(tmp_path / "mnist"), "split": {"val": 0.1, "test": 0.0, "seed": 0}}
    spec["doctor"] = {"folds": 4, "epochs": 8}
    found = sw2.doctor(spec, tmp_path / "out", verbose=False)
    n = len(flipped)
    precision = found.table["id"].head(n).isin(flipped).mean()
    print(f"doctor on 6,000 MNIST images: precision at N={n}: {precision:.3f}, summary {found.summary}")
    assert precision >= 0.8
    assert found.summary["examples"] == 6000 and found.summary["out_of_fold_accuracy"] > 0.93
    listed = pd.read_csv(tmp_path / "out" / "label_errors.csv")
    assert list(listed.columns) == [
        "position",
        "id",
        "given",
        "suggested",
        "p_given",
        "p_suggested",
        "quality",
        "flagged",
    ]
    assert listed["flagged"].sum() == found.summary["flagged"]  # every flagged example is listed
    assert (tmp_path / "out" / "label_errors.png").stat().st_size > 10_000


def test_doctor_cli_on_a_table(tmp_path):
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(wine), 6, replace=False)
    wine.loc[flipped, "label"] = (wine.loc[flipped, "label"] + 1) % 3
    wine.to_csv(tmp_path / "wine.csv", index=False)
    spec = {
        "name": "wine",
        "data": {"path": "wine.csv", "split": {"val": 0.1, "test": 0.2}},
        "train": {"epochs": 40, "batch_size": 16, "lr": 0.003},
        "doctor": {"folds": 3},
    }
    result = run_cli("doctor", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "doc"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "suspected label errors" in result.stdout
    summary = json.loads((tmp_path / "doc" / "doctor.json").read_text())
    assert summary["folds"] == 3 and summary["spec"]["doctor"]["folds"] == 3
    listed = pd.read_csv(tmp_path / "doc" / "label_errors.csv")
    in_pool = [str(i + 2) for i in flipped]  # ids are the file's line numbers; some rows went to the test split
    top = listed["id"].astype(str).head(6)
    assert top.isin(in_pool).sum() >= 3, listed.head(10)


def test_doctor_findings_can_be_excluded_from_training(tmp_path):
    """data.exclude reads the doctor's label_errors.csv and drops its flagged training examples."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame.rename(columns={"target": "label"})
    iris.loc[[0, 60, 120], "label"] = [2, 0, 1]  # three clear label errors
    iris.to_csv(tmp_path / "iris.csv", index=False)
    spec = {"name": "iris", "data": {"path": "iris.csv", "split": {"test": 0.0}},
            "train": {"epochs": 60, "batch_size": 16, "lr": 0.01}, "doctor": {"folds": 3}}  # fmt: skip
    found = sw2.doctor(spec, tmp_path / "doc", root=tmp_path, verbose=False)
    flagged = set(found.table.loc[found.table["flagged"], "id"])
    assert {"2", "62", "122"} <= flagged, found.table.head(8)  # ids are line numbers in the file
    spec["data"]["exclude"] = "doc/label_errors.csv"
    result = run_cli("train", str(write_spec(tmp_path, spec)), "--out", "b", "--no-check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "b" / "metrics.json").read_text())["data"]
    assert data["excluded"] == len(flagged)


def test_doctor_bad_options_exit_2(tmp_path):
    spec = {"data": {"source": "package", "name": "iris"}}
    result = sw2_here("doctor", str(write_spec(tmp_path, spec)), "--folds", "1", cwd=tmp_path)
    assert result.returncode == 2 and "doctor.folds" in result.stderr and "Traceback" not in result.stderr


def test_doctor_refuses_regression(tmp_path):
    spec = {"data": {"source": "package", "name": "diabetes"}, "task": "regress", "target": "target"}
    result = sw2_here("doctor", str(write_spec(tmp_path, spec)), cwd=tmp_path)
    assert result.returncode == 2
    assert "task: regress" in result.stderr and "Traceback" not in result.stderr
