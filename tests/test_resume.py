"""What `--resume` and `deterministic` guarantee: bit-exact without a time budget (in bf16 too); with one,
the time already spent is kept and the run ends within its budget."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

import sw2
from sw2.engine import checkpoint


def interrupt_after(monkeypatch, epoch: int) -> None:
    """The run stops (as if killed) right after the checkpoint of `epoch` is written."""
    real = checkpoint.save

    def save(folder, state):
        real(folder, state)
        if state["state"]["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save)


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_is_bit_exact(tmp_path, monkeypatch, precision):
    spec = {
        "data": {"source": "package", "name": "digits"},
        "train": {"epochs": 4, "lr": 0.003, "precision": precision, "deterministic": True, "lookahead": True},
    }
    sw2.train(spec, tmp_path / "full", verbose=False, check=False)
    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            sw2.train(spec, tmp_path / "cut", verbose=False, check=False)
    resumed = sw2.train(spec, tmp_path / "cut", verbose=False, check=False, resume=True)
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["training"]["precision"] == precision


def test_deterministic_reruns_are_identical_and_settings_are_put_back(tmp_path):
    spec = {"data": {"source": "package", "name": "digits"}, "train": {"epochs": 2, "deterministic": True}}
    threads = torch.get_num_threads()
    first = sw2.train(spec, tmp_path / "a", verbose=False, check=False)
    sw2.train(spec, tmp_path / "b", verbose=False, check=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first.metrics["training"]["thread_choice"]["pinned"]
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads


def test_resume_under_a_time_budget_keeps_the_time_spent(tmp_path, monkeypatch):
    """The guarantee with a budget: the epochs done before the stop are kept as they were, the budget is not
    restarted (the whole run ends within it, plus the epoch that crosses it), and the schedule goes on from
    the time spent. The lr of later steps follows the clock, so the weights are not bit-exact. The clock is the
    test's (`tick` seconds a reading, in both runs), so the figures are the same on any machine."""
    from sw2.engine import loop

    budget, tick, readings = 3.0, 0.02, itertools.count(0.0, 0.02)
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: next(readings)))
    spec = {"data": {"source": "package", "name": "digits"}, "train": {"epochs": 1000, "time_budget": budget}}
    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            sw2.train(spec, tmp_path / "b", verbose=False, check=False)
    saved = torch.load(tmp_path / "b.checkpoint" / "checkpoint.pt", weights_only=True)["state"]
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, check=False, resume=True)
    t = bundle.metrics["training"]
    history = [json.loads(x) for x in (bundle.path / "history.jsonl").read_text().splitlines()]
    assert history[:2] == saved["history"], "the epochs before the stop are kept"
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert t["stopped"] == "time_budget"
    assert budget < t["seconds"] <= budget + 5 * tick, "one budget across both runs, stopped as it ran out"
    assert history[-1]["lr"] < 0.05 * history[2]["lr"], "the schedule annealed within the budget"
