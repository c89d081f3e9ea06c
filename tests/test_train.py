"""End to end through the Python API: real data in, a bundle out, metrics reached, reload identical."""

from __future__ import annotations

import itertools
import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import sw2
from sw2.data import prepare
from sw2.spec import load_spec
from sw2.tasks import TASKS
from tests.conftest import ROOT

BUNDLE_FILES = {
    "model.safetensors",
    "model.json",
    "preprocess.json",
    "spec.yaml",
    "metrics.json",
    "history.jsonl",
    "fingerprint.json",
    "curves.png",
    "confusion.png",
    "tensorboard",
    "what_the_net_sees.png",
    "report.html",
}


def test_digits_demo_reaches_accuracy_and_writes_bundle(digits):
    assert digits.metrics["test"]["accuracy"] >= 0.95
    assert digits.metrics["test"]["baseline"]["accuracy"] < 0.2
    assert BUNDLE_FILES <= {p.name for p in digits.path.iterdir()}
    assert any((digits.path / "tensorboard").iterdir())
    assert "lr: 0.003" in (digits.path / "spec.yaml").read_text()
    history = [json.loads(line) for line in (digits.path / "history.jsonl").read_text().splitlines()]
    assert len(history) == 30 and history[-1]["val_metric"] > 0.9
    m = digits.metrics["test"]
    assert len(m["per_class"]) == 10 and sum(map(sum, m["confusion"])) == m["n"]
    preflight = digits.metrics["preflight"]
    assert {v["status"] for v in preflight["verdicts"]} == {"PASS"}, preflight
    # what keeps the pre-flight cheap, in steps (its seconds on this machine: benchmarks.mnist's "pre-flight s")
    said = {v["check"]: v["message"] for v in preflight["verdicts"]}
    fitted = re.search(r"examples fitted: .* in (\d+) steps", said["overfit one batch"])
    assert fitted and int(fitted[1]) <= 300 and preflight["seconds"] > 0, said  # no longer try for this small net
    assert "in 30 steps" in said["input-independent baseline"], said  # the short try decided


def test_reloaded_bundle_predicts_identically(digits):
    images = np.random.default_rng(0).integers(0, 255, (16, 1, 8, 8), dtype=np.uint8)
    again = sw2.load(digits.path)
    assert np.array_equal(digits.predict_proba(images), again.predict_proba(images))
    assert len(again.top(images, k=3)[0]) == 3


def test_penguins_tabular_with_missing_values(tmp_path):
    bundle = sw2.train(ROOT / "examples" / "penguins.yaml", tmp_path / "b", verbose=False)
    report = bundle.metrics["data"]
    assert report["dropped_missing_target"] == 0 and report["missing_values"]["sex"] > 0
    assert bundle.metrics["test"]["accuracy"] >= 0.97
    row = {
        "island": "Biscoe",
        "bill_length_mm": 47.0,
        "bill_depth_mm": 15.0,
        "flipper_length_mm": 220.0,
        "body_mass_g": 5500.0,
        "sex": None,
        "year": 2008,
    }
    assert bundle.predict(row)[0] == "Gentoo"


def test_diabetes_regression_beats_linear_regression(tmp_path):
    from sklearn.linear_model import LinearRegression

    spec, root = load_spec(ROOT / "examples" / "diabetes.yaml")
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, root=root)
    data = prepare(spec, root, TASKS.get(spec.task))
    x = torch.cat([data.train.inputs["num"], data.val.inputs["num"]]).numpy()
    y = torch.cat([data.train.target, data.val.target]).numpy()
    pred = LinearRegression().fit(x, y).predict(data.test.inputs["num"].numpy())
    truth = data.test.target.numpy()
    linear_r2 = 1 - ((pred - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    print(f"diabetes test R2: sw2 {bundle.metrics['test']['r2']:.4f}  LinearRegression {linear_r2:.4f}")
    assert bundle.metrics["test"]["r2"] >= linear_r2
    assert bundle.metrics["test"]["r2"] > bundle.metrics["test"]["baseline"]["r2"] + 0.3
    report = (bundle.path / "report.html").read_text()
    assert 'alt="predicted against true"' in report and "largest absolute errors" in report


def test_csv_and_parquet_sources_with_given_test_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "color": rng.choice(["red", "green", None], size=n)}
    )
    frame["y"] = np.where(frame.x1 + (frame.color == "red") > 0.3, "yes", "no")
    frame.loc[::37, "x2"] = np.nan
    frame.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[300:].to_parquet(tmp_path / "test.parquet")
    frame.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    spec = {
        "data": {"path": "train.csv", "test_path": "test.csv"},
        "target": "y",
        "train": {"epochs": 40, "batch_size": 32, "lr": 0.01},
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, root=tmp_path)
    assert bundle.metrics["test"]["n"] == 100 and bundle.metrics["test"]["accuracy"] >= 0.9
    assert bundle.metrics["data"]["missing_values"]["x2"] > 0
    from_parquet = sw2.evaluate(bundle, tmp_path / "test.parquet")
    assert from_parquet["accuracy"] == pytest.approx(bundle.metrics["test"]["accuracy"])


def test_image_folder_with_train_test_layout(tmp_path):
    from tests.conftest import make_image_folder

    make_image_folder(tmp_path / "data" / "train", per_class=30, seed=0)
    make_image_folder(tmp_path / "data" / "test", per_class=10, seed=1)
    spec = {
        "data": {"path": "data", "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 10, "batch_size": 16, "lr": 0.01},
        "augment": {"flip": False, "translate": 1},
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, root=tmp_path)
    assert bundle.metrics["test"]["n"] == 20 and bundle.metrics["test"]["accuracy"] >= 0.9
    assert list(tmp_path.joinpath("cache").glob("images-*.npy")), "decoded images were not cached"
    assert list(bundle.predict(tmp_path / "data" / "test" / "h")) == ["h"] * 10


def test_time_budget_stops_cleanly_and_writes_bundle(tmp_path, monkeypatch):
    """The engine reads its budget off its clock, here the test's: `tick` seconds a reading, so the run stops at
    the same step on any machine, the first whose end reads past the budget (never this machine's seconds)."""
    from sw2.engine import loop

    tick, readings = 0.02, itertools.count(0.0, 0.02)
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: next(readings)))
    spec = {
        "data": {"source": "package", "name": "digits"},
        "model": {"widths": [64, 128]},
        "train": {"epochs": 500, "time_budget": 2.0},
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False)
    training = bundle.metrics["training"]
    # stopped by the step that read past the budget: a step reads the clock twice, an epoch's start and end once
    assert training["stopped"] == "time_budget" and 2.0 < training["seconds"] <= 2.0 + 5 * tick, training
    assert training["epochs"] < 500 and bundle.metrics["test"]["accuracy"] > 0.5
    assert training["epochs"] - 1 < training["epochs_done"] <= training["epochs"]  # within the last epoch begun


def test_prune_easy_spends_the_same_steps_on_more_epochs(tmp_path):
    spec = {
        "data": {"source": "package", "name": "digits", "split": {"val": 0.1, "test": 0.2, "seed": 0}},
        "model": {"name": "convnet", "widths": [32, 64]},
        "train": {"epochs": 20, "batch_size": 64, "lr": 0.003, "prune_easy": 0.5},
    }
    training = sw2.train(spec, tmp_path / "b", verbose=False).metrics["training"]
    full = sw2.train({**spec, "train": {**spec["train"], "prune_easy": 0}}, tmp_path / "f", verbose=False)
    assert training["epochs_done"] == full.metrics["training"]["epochs_done"] == 20  # the same steps
    assert training["epochs"] > 25 and full.metrics["training"]["epochs"] == 20
    assert sw2.load(tmp_path / "b").metrics["test"]["accuracy"] >= 0.95


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_early_stopping_restores_best_weights(tmp_path, precision):
    """Validation, early stopping's choice and the final figures are all fp32, whatever the training precision."""
    spec = {
        "data": {"source": "package", "name": "wine"},
        "model": {"name": "mlp"},  # early stopping is the training loop's
        "train": {
            "epochs": 200,
            "lr": 0.01,
            "schedule": "constant",
            "early_stopping": {"patience": 3},
            "precision": precision,
        },
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False)
    t = bundle.metrics["training"]
    assert t["stopped"] == "early_stopping" and t["epochs"] == t["best_epoch"] + 3
    history = [json.loads(x) for x in (bundle.path / "history.jsonl").read_text().splitlines()]
    best = min(h["val_loss"] for h in history)
    assert bundle.metrics["val"]["log_loss"] == pytest.approx(best, rel=1e-4)


def test_retraining_replaces_bundle_atomically(tmp_path):
    spec = {"data": {"source": "package", "name": "iris"}, "model": {"name": "mlp"}, "train": {"epochs": 3}}
    sw2.train(spec, tmp_path / "b", verbose=False)
    first = load_file(str(tmp_path / "b" / "model.safetensors"))
    spec["train"]["seed"] = 1
    sw2.train(spec, tmp_path / "b", verbose=False)
    second = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert not torch.equal(first["head.weight"], second["head.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_image_archive_is_unpacked_once_and_trained(tmp_path):
    import tarfile

    from tests.conftest import make_image_folder

    make_image_folder(tmp_path / "pack" / "stripes" / "train", per_class=20, seed=0)
    make_image_folder(tmp_path / "pack" / "stripes" / "test", per_class=6, seed=1)
    with tarfile.open(tmp_path / "stripes.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "pack" / "stripes", arcname="stripes")
    spec = {
        "data": {"path": "stripes.tar.gz", "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 8, "batch_size": 16, "lr": 0.01},
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, root=tmp_path)
    assert bundle.metrics["test"]["n"] == 12 and bundle.metrics["test"]["accuracy"] >= 0.9
    assert len(list((tmp_path / "cache").glob("extracted-*"))) == 1
    sw2.train(spec, tmp_path / "b2", verbose=False, root=tmp_path)  # second run reuses the unpacked copy
    assert len(list((tmp_path / "cache").glob("extracted-*"))) == 1
