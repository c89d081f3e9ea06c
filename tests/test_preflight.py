"""The pre-flight (`sw2 check`, and before every `sw2 train`): broken specs get the matching verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sw2
from tests.conftest import ROOT, sw2_here, write_spec
from tests.conftest import sw2 as run_sw2


def wine_csv(folder, *, shuffle_labels=False, zero_inputs=False, id_leak=False):
    datasets = pytest.importorskip("sklearn.datasets")
    bunch = datasets.load_wine(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    if shuffle_labels:
        frame["label"] = np.random.default_rng(0).permutation(frame["label"].to_numpy())
    if zero_inputs:
        frame.loc[:, frame.columns != "label"] = 0.0
    if id_leak:  # rows sorted by class, numbered: the number alone gives the class away
        frame = frame.sort_values("label").reset_index(drop=True)
        frame.insert(0, "record_id", np.arange(len(frame)))
    frame.to_csv(folder / "wine.csv", index=False)
    return {
        "data": {"path": "wine.csv", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
        "target": "label",
        "model": {"name": "mlp", "widths": [32, 32]},
        "train": {"epochs": 30, "batch_size": 16, "lr": 0.003},
        **({"inputs": {"record_id": "number"}} if id_leak else {}),  # kept: an id is otherwise left out
    }


def verdicts(spec, folder) -> dict[str, str]:
    return {v.check: v.status for v in sw2.check(spec, root=folder)}


def test_healthy_digits_passes_every_check():
    got = verdicts(ROOT / "examples" / "digits.yaml", None)
    assert set(got.values()) == {"PASS"}, got
    assert {"loss at init", "overfit one batch", "input-independent baseline", "train/test leakage"} <= set(got)


def test_healthy_table_passes(tmp_path):
    got = verdicts(wine_csv(tmp_path), tmp_path)
    assert set(got.values()) == {"PASS"}, got


def test_shuffled_labels_fail_the_input_independent_baseline(tmp_path):
    got = {v.check: v for v in sw2.check(wine_csv(tmp_path, shuffle_labels=True), root=tmp_path)}
    baseline = got["input-independent baseline"]
    assert baseline.status == "FAIL" and "labels shuffled" in baseline.message, got
    assert "nor does a linear probe" in baseline.message, baseline  # no simple model finds signal either


def test_without_a_validation_split_training_rows_are_held_out_for_the_check(tmp_path):
    spec = wine_csv(tmp_path)
    spec["data"]["split"]["val"] = 0
    got = {v.check: v for v in sw2.check(spec, root=tmp_path)}["input-independent baseline"]
    assert got.status == "PASS" and "held-out training rows (no validation split)" in got.message, got
    shuffled = wine_csv(tmp_path, shuffle_labels=True)
    shuffled["data"]["split"]["val"] = 0
    assert verdicts(shuffled, tmp_path)["input-independent baseline"] == "FAIL"


def test_a_longer_try_over_the_budget_is_skipped_with_a_warning(tmp_path, monkeypatch):
    from sw2.preflight import recipe

    spec = wine_csv(tmp_path)
    spec["train"]["lr"] = 1e-5  # too slow to beat zeroed inputs within 30 steps
    monkeypatch.setattr(recipe, "budget_seconds", lambda *a, **k: 0.0)
    got = {v.check: v for v in sw2.check(spec, root=tmp_path)}["input-independent baseline"]
    assert got.status == "WARN" and "over the pre-flight's budget" in got.message, got


def test_pre_flight_budget_is_a_share_of_the_planned_training():
    from types import SimpleNamespace

    from sw2.preflight.recipe import budget_seconds
    from sw2.spec import TrainSpec

    data = SimpleNamespace(train=range(10_000))  # 10,000 rows, batch 100: 100 steps an epoch
    spec = SimpleNamespace(train=TrainSpec(epochs=10, batch_size=100))
    assert budget_seconds(spec, data, per_step=2.0) == 200.0  # 10% of 1,000 steps x 2 s
    assert budget_seconds(spec, data, per_step=0.01) == 60.0  # never under the floor
    spec.train = TrainSpec(epochs=10, batch_size=100, time_budget=900)
    assert budget_seconds(spec, data, per_step=2.0) == 90.0  # the time budget caps the plan


def test_zeroed_inputs_are_constant_and_carry_no_signal(tmp_path):
    # all rows become one input: cleaning keeps one per label, too few to split, which data loading refuses
    with pytest.raises(sw2.UserError):
        sw2.check(wine_csv(tmp_path, zero_inputs=True), root=tmp_path)
    # the same inputs for every training row reach the model: nothing tells the examples apart
    from sw2.data import prepare
    from sw2.preflight.recipe import overfit_one_batch, zeroed
    from sw2.spec import parse_spec
    from sw2.tasks import TASKS

    spec = parse_spec({**wine_csv(tmp_path), "task": "classify"}, "spec")
    data = prepare(spec, tmp_path, TASKS.get(spec.task))
    data.train = zeroed(data.train)
    got = overfit_one_batch(spec, data, TASKS.get("classify"))
    assert got.status == "FAIL" and "have the same input but different targets" in got.message, got


def test_lr_100_diverges_on_one_batch(tmp_path):
    spec = wine_csv(tmp_path)
    spec["train"]["lr"] = 100.0
    got = {v.check: v for v in sw2.check(spec, root=tmp_path)}["overfit one batch"]
    assert got.status == "FAIL" and "lower train.lr" in got.message, got


def test_leaking_id_column(tmp_path):
    got = verdicts(wine_csv(tmp_path, id_leak=True), tmp_path)
    assert got["leaking column"] == "FAIL", got
    checks = sw2.check(wine_csv(tmp_path, id_leak=True), root=tmp_path)
    assert "'record_id' looks like a row ID" in next(v.message for v in checks if v.check == "leaking column")


def test_train_stops_on_fail_unless_forced(tmp_path):
    write_spec(tmp_path, wine_csv(tmp_path, id_leak=True))
    res = sw2_here("train", "spec.yaml", "--quiet", "--out", "b", cwd=tmp_path)
    assert res.returncode == 2 and "pre-flight FAIL: leaking column" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "b").exists()
    assert sw2_here("check", "spec.yaml", cwd=tmp_path).returncode == 1
    res = run_sw2("train", "spec.yaml", "--quiet", "--out", "b", "--force", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    saved = pd.read_json(tmp_path / "b" / "metrics.json", typ="series")["preflight"]
    assert saved["seconds"] > 0 and any(v["status"] == "FAIL" for v in saved["verdicts"])
    after = saved["verdicts"][-1]  # checked once trained: the (leaky) model beats the majority class
    assert after["check"] == "beats dumb baseline" and after["status"] == "PASS", after
    res = run_sw2("train", "spec.yaml", "--quiet", "--out", "c", "--no-check", cwd=tmp_path)
    assert res.returncode == 0 and "preflight" not in pd.read_json(tmp_path / "c" / "metrics.json", typ="series")


def test_lr_auto_uses_the_finder_and_saves_its_plot(tmp_path):
    spec = wine_csv(tmp_path)
    spec["train"]["lr"] = "auto"
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, root=tmp_path)
    found = bundle.metrics["lr_finder"]["suggestion"]
    assert bundle.spec.train.lr == found and 1e-3 < found < 1e-2  # the valley: 0.0029 when measured
    assert (bundle.path / "lr_finder.png").exists() and (bundle.path / "what_the_net_sees.csv").exists()
    verdict = next(v for v in bundle.metrics["preflight"]["verdicts"] if v["check"] == "learning rate")
    assert verdict["status"] == "PASS" and "lr: auto" in verdict["message"]
    assert bundle.metrics["test"]["accuracy"] >= 0.85


def test_gradient_health_and_dead_relus(tmp_path):
    spec = wine_csv(tmp_path)
    spec["model"]["activation"] = "relu"
    got = {v.check: v for v in sw2.check(spec, root=tmp_path)}
    assert got["gradient health"].status == "PASS" and got["dead ReLUs"].status == "PASS"
    spec["train"]["lr"] = 1e6
    spec["train"]["optimizer"] = "sgd"
    got = {v.check: v.status for v in sw2.check(spec, root=tmp_path)}
    assert got["gradient health"] in ("WARN", "FAIL") and got["overfit one batch"] == "FAIL", got


def test_beats_baseline_verdict():
    from sw2.preflight.recipe import beats_baseline
    from sw2.tasks import TASKS

    classify, regress = TASKS.get("classify"), TASKS.get("regress")

    base = {"name": "majority class", "accuracy": 0.40, "log_loss": 1.09}
    assert beats_baseline(classify, {"accuracy": 0.9, "log_loss": 0.3, "baseline": base}).status == "PASS"
    assert beats_baseline(classify, {"accuracy": 0.38, "log_loss": 1.2, "baseline": base}).status == "FAIL"
    mean = {"name": "train mean", "rmse": 10.0, "r2": 0.0}
    assert beats_baseline(regress, {"rmse": 12.0, "r2": -0.3, "baseline": mean}).status == "FAIL"


def test_shuffled_labels_fail_on_a_larger_table(tmp_path):
    """3,000 rows: too many for the short run to memorise, so only the linear probe's finding nothing tells
    shuffled labels from a slow start."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 8))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["label"] = rng.permutation((x[:, 0] + x[:, 1] > 0).astype(int))
    frame.to_csv(tmp_path / "big.csv", index=False)
    spec = {"data": {"path": "big.csv"}, "train": {"epochs": 5, "threads": 1}}
    got = {v.check: v for v in sw2.check(spec, root=tmp_path)}["input-independent baseline"]
    assert got.status == "FAIL" and "labels shuffled" in got.message and "nor does a linear probe" in got.message
    frame["label"] = (x[:, 0] + x[:, 1] > 0).astype(int)  # the same table with its labels in place passes
    frame.to_csv(tmp_path / "big.csv", index=False)
    assert {v.check: v for v in sw2.check(spec, root=tmp_path)}["input-independent baseline"].status == "PASS"
