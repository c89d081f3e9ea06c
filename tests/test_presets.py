"""Presets: `sw2 train SPEC --preset fast|balanced|best --time T` trains one model, searches then trains the
best, or searches then averages three seeds of the best, within about the time given.

What is checked is how each preset shares out `--time` (the search's seconds, each member's time budget, the
one training's budget), with the preset's clock monkeypatched where the share depends on the time already
spent; never this machine's wall time. How long the presets take here: `python -m benchmarks.presets`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sw2.tuning
from sw2 import presets
from sw2.bundle import Bundle
from tests.conftest import sw2_here, write_spec

pytest.importorskip("optuna")

WINE = {
    "name": "wine",
    "data": {"source": "package", "name": "wine", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
    "task": "classify",
    "train": {"epochs": 20, "batch_size": 32, "lr": 0.003},
}


def run(tmp_path: Path, spec: dict, *flags: str) -> Bundle:
    path = write_spec(tmp_path, spec)
    res = sw2_here("train", str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-check", *flags, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return Bundle(tmp_path / "out")


class Clock:
    """The preset's `time.time()`: it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


def searches(monkeypatch: pytest.MonkeyPatch, clock: Clock | None = None) -> list[dict]:
    """The keyword arguments of each search the preset starts (a real search); with `clock`, the clock moves
    on by the search's seconds once it ends, as if it took all of them."""
    calls, real = [], sw2.tuning.tune

    def tune(*args, **kwargs):
        calls.append(kwargs)
        found = real(*args, **kwargs)
        if clock is not None:
            clock.now += kwargs["seconds"]
        return found

    monkeypatch.setattr(sw2.tuning, "tune", tune)
    return calls


def test_best_searches_then_averages_three_seeds_within_the_time(tmp_path: Path, monkeypatch) -> None:
    """--time 20s: the search gets half (10 s); the three members share 90% of what is left (10 s, the search
    having taken its 10): the search's best bundle, then two more seeds with 3 s each."""
    clock = Clock()
    monkeypatch.setattr(presets, "time", clock)
    calls = searches(monkeypatch, clock)
    b = run(tmp_path, WINE, "--preset", "best", "--time", "20s")
    assert [(c["seconds"], c["trials"]) for c in calls] == [(10.0, None)]
    arch = json.loads((b.path / "model.json").read_text())
    assert arch["name"] == "ensemble" and len(arch["kwargs"]["members"]) == 3
    members = [Bundle(tmp_path / "out-members" / f"seed{i}") for i in (1, 2)]
    assert [m.spec.train.time_budget for m in members] == [pytest.approx(0.9 * 10 / 3)] * 2
    best_seed = Bundle(tmp_path / "out-search" / "best").spec.train.seed
    assert [m.spec.train.seed for m in members] == [best_seed + 1, best_seed + 2]
    assert b.metrics["test"]["accuracy"] >= 0.85
    assert (b.path / "tune_leaderboard.md").is_file() and (tmp_path / "out-search" / "leaderboard.md").is_file()


def test_balanced_from_the_spec_searches_then_trains_the_best(tmp_path: Path, monkeypatch) -> None:
    calls = searches(monkeypatch)
    b = run(tmp_path, {**WINE, "preset": "balanced"}, "--time", "10s")
    assert [(c["seconds"], c["trials"]) for c in calls] == [(pytest.approx(6.0), None)]  # 60% of --time searches
    # the tuned mlp, then model: auto keeps the best of it, trees and a linear model on val
    chosen = b.metrics["model_selection"]
    assert [c["model"] for c in chosen["candidates"]] == ["mlp", "gbm", "linear"]
    assert json.loads((b.path / "model.json").read_text())["name"] == chosen["chosen"]
    assert (b.path / "tune_leaderboard.md").is_file()
    assert b.metrics["test"]["accuracy"] >= 0.85


def test_fast_is_one_training_within_the_time(tmp_path: Path, monkeypatch) -> None:
    calls = searches(monkeypatch)
    b = run(tmp_path, {k: v for k, v in WINE.items() if k != "train"}, "--preset", "fast", "--time", "5s")
    assert calls == [] and not (tmp_path / "out-search").exists()  # no search: the spec trained as it is
    assert b.spec.train.time_budget == 5 and b.metrics["training"]["length"]["time_budget"] == 5  # --time: its budget


def test_bad_preset_flags_are_one_line(tmp_path: Path) -> None:
    path = write_spec(tmp_path, WINE)
    for flags, needle in ((["--preset", "slow"], "invalid choice"), (["--time", "0"], "--time"),
                          (["--preset", "best", "--resume"], "--resume")):  # fmt: skip
        res = sw2_here("train", str(path), "--out", str(tmp_path / "o"), *flags, cwd=tmp_path)
        assert res.returncode == 2 and needle in res.stderr, res.stderr
