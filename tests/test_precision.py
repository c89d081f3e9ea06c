"""Precision chosen by the CPU's promise and a timing (stub timers here, so any machine runs every branch),
and the bf16 training path itself, which CI runs on CPUs that only emulate bf16: kept small."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sw2
from sw2.engine import precision
from sw2.spec import TrainSpec
from tests.conftest import make_image_folder

CPU = torch.device("cpu")


@pytest.fixture
def native(monkeypatch):
    """Pretend the CPU's flags promise native bf16 (or not)."""

    def set_to(value: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: value)

    return set_to


def stub_timer(ms: dict[str, float], calls: list[str]):
    def seconds_per_step(dtype: torch.dtype | None) -> float:
        name = "fp32" if dtype is None else "bf16"
        calls.append(name)
        return ms[name] / 1000

    return seconds_per_step


def test_spec_and_flags_decide_without_timing(native):
    assert precision.choose(TrainSpec(precision="fp32"), CPU, "k").dtype is None
    assert precision.choose(TrainSpec(precision="bf16"), CPU, "k").dtype == torch.bfloat16
    assert precision.choose(TrainSpec(), torch.device("cuda"), "k").dtype == torch.bfloat16
    native(False)
    calls: list[str] = []
    found = precision.decide(TrainSpec(), CPU, "k", stub_timer({"fp32": 9, "bf16": 1}, calls))
    assert found.dtype is None and "no native bf16" in found.how and calls == [], "emulated bf16 is never timed"
    native(True)
    untimed = precision.choose(TrainSpec(), CPU, "k")
    assert untimed.dtype == torch.bfloat16 and "not timed" in untimed.how


@pytest.mark.parametrize(("ms", "expected"), [({"fp32": 10, "bf16": 6}, "bf16"), ({"fp32": 10, "bf16": 14}, "fp32")])
def test_auto_times_both_where_the_flags_promise_and_caches_it(native, ms, expected):
    native(True)
    calls: list[str] = []
    found = precision.decide(TrainSpec(), CPU, "shape-a", stub_timer(ms, calls))
    assert found.name == expected and sorted(calls) == ["bf16", "fp32"]
    assert f"bf16 {ms['bf16']:.1f} ms/step against fp32 {ms['fp32']:.1f}" in found.how
    again = precision.decide(TrainSpec(), CPU, "shape-a", stub_timer({"fp32": 1, "bf16": 99}, calls))
    assert again.name == expected and "(cached)" in again.how and len(calls) == 2, "the same model is not re-timed"
    assert precision.choose(TrainSpec(), CPU, "shape-a").name == expected, "training reads the pre-flight's timing"
    precision.decide(TrainSpec(), CPU, "shape-b", stub_timer(ms, calls))
    assert len(calls) == 4, "another model shape is timed"


def test_a_tie_keeps_fp32_and_another_cpu_times_again(native, monkeypatch):
    native(True)
    calls: list[str] = []
    assert precision.decide(TrainSpec(), CPU, "s", stub_timer({"fp32": 10, "bf16": 9.8}, calls)).name == "fp32"
    monkeypatch.setattr(precision, "cpu_model", lambda: "Another CPU")
    assert precision.decide(TrainSpec(), CPU, "s", stub_timer({"fp32": 10, "bf16": 5}, calls)).name == "bf16"
    assert len(calls) == 4


def test_a_damaged_cache_is_timed_again(native):
    native(True)
    precision.cache_file().parent.mkdir(parents=True, exist_ok=True)
    precision.cache_file().write_text("{not json")
    calls: list[str] = []
    assert precision.decide(TrainSpec(), CPU, "d", stub_timer({"fp32": 10, "bf16": 5}, calls)).name == "bf16"
    assert json.loads(precision.cache_file().read_text())


def test_preflight_times_real_steps_and_training_uses_its_choice(tmp_path, native):
    """The pre-flight's real timing on this CPU (which emulates bf16 if it lacks the flags: then fp32 wins),
    recorded with the threads and the CPU in metrics.json."""
    native(True)
    spec = {"name": "iris", "data": {"source": "package", "name": "iris"}, "train": {"epochs": 3},
            "model": {"name": "mlp"}}  # fmt: skip  # a model the training loop trains
    bundle = sw2.train(spec, tmp_path / "b", verbose=False)
    t = bundle.metrics["training"]
    assert t["precision"] in ("fp32", "bf16") and "timed" in t["precision_choice"]
    assert "(cached)" in t["precision_choice"], "training took the pre-flight's timing"
    assert t["cpu"] and t["threads"] >= 1
    speed = next(v for v in bundle.metrics["preflight"]["verdicts"] if v["check"] == "speed")
    assert "ms/step" in speed["message"] and f"precision {t['precision']}" in speed["message"]


# The bf16 path trains on every CPU (CI's emulate it, slowly): a conv net and an MLP learn, and a bundle
# trained in bf16 reloads to the same fp32 predictions.


def test_bf16_conv_net_learns_and_reloads_the_same(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=24)
    spec = {
        "data": {"path": str(tmp_path / "imgs"), "split": {"val": 0.2, "test": 0.25}},
        "model": {"name": "convnet", "widths": [8, 16]},
        "train": {"epochs": 6, "batch_size": 16, "lr": 0.01, "precision": "bf16"},
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, check=False)
    assert bundle.metrics["training"]["precision"] == "bf16"
    assert bundle.metrics["test"]["accuracy"] >= 0.9, bundle.metrics["test"]
    images = np.random.default_rng(0).integers(0, 255, (4, 3, 16, 16), dtype=np.uint8)
    assert np.array_equal(bundle.predict_proba(images), sw2.load(bundle.path).predict_proba(images))


def test_bf16_mlp_learns(tmp_path):
    spec = {"data": {"source": "package", "name": "digits"}, "train": {"epochs": 10, "lr": 0.003, "precision": "bf16"}}
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, check=False)
    assert bundle.metrics["test"]["accuracy"] >= 0.9, bundle.metrics["test"]


def test_a_cache_entry_not_as_sw2_writes_it_is_timed_again(native):
    """A hand-edited or foreign entry (no step times) is ignored, not a traceback."""
    native(True)
    key = precision._entry_key("e")
    precision.cache_file().parent.mkdir(parents=True, exist_ok=True)
    precision.cache_file().write_text(json.dumps({key: {"precision": "bf16", "ms_per_step": "fast"}}))
    calls: list[str] = []
    assert precision.decide(TrainSpec(), CPU, "e", stub_timer({"fp32": 10, "bf16": 14}, calls)).name == "fp32"
    assert len(calls) == 2
