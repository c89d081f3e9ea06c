"""Presets: `sw2 train SPEC --preset fast|balanced|best --time T` trains one model, searches then trains the
best, or searches then averages three seeds of the best, within about the time given."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sw2.bundle import Bundle
from tests.conftest import sw2_here, write_spec

pytest.importorskip("optuna")

WINE = {
    "name": "wine",
    "data": {"source": "package", "name": "wine", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
    "task": "classify",
    "train": {"epochs": 20, "batch_size": 32, "lr": 0.003},
}


def run(tmp_path: Path, spec: dict, *flags: str) -> tuple[Bundle, float]:
    path = write_spec(tmp_path, spec)
    t0 = time.perf_counter()
    res = sw2_here("train", str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-check", *flags, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return Bundle(tmp_path / "out"), time.perf_counter() - t0


def test_best_searches_then_averages_three_seeds_within_the_time(tmp_path: Path) -> None:
    b, seconds = run(tmp_path, WINE, "--preset", "best", "--time", "20s")
    arch = json.loads((b.path / "model.json").read_text())
    assert arch["name"] == "ensemble" and len(arch["kwargs"]["members"]) == 3
    assert b.metrics["test"]["accuracy"] >= 0.85
    assert (b.path / "tune_leaderboard.md").is_file() and (tmp_path / "out-search" / "leaderboard.md").is_file()
    assert seconds < 20 * 1.5 + 10, f"{seconds:.0f} s for --time 20s"


def test_balanced_from_the_spec_searches_then_trains_the_best(tmp_path: Path) -> None:
    b, _ = run(tmp_path, {**WINE, "preset": "balanced"}, "--time", "10s")
    # the tuned mlp, then model: auto keeps the best of it, trees and a linear model on val
    chosen = b.metrics["model_selection"]
    assert [c["model"] for c in chosen["candidates"]] == ["mlp", "gbm", "linear"]
    assert json.loads((b.path / "model.json").read_text())["name"] == chosen["chosen"]
    assert (b.path / "tune_leaderboard.md").is_file()
    assert b.metrics["test"]["accuracy"] >= 0.85


def test_fast_is_one_training_within_the_time(tmp_path: Path) -> None:
    b, _ = run(tmp_path, {k: v for k, v in WINE.items() if k != "train"}, "--preset", "fast", "--time", "5s")
    assert b.spec.train.time_budget == 5 and not (tmp_path / "out-search").exists()
    assert b.metrics["training"]["seconds"] <= 6


def test_bad_preset_flags_are_one_line(tmp_path: Path) -> None:
    path = write_spec(tmp_path, WINE)
    for flags, needle in ((["--preset", "slow"], "invalid choice"), (["--time", "0"], "--time"),
                          (["--preset", "best", "--resume"], "--resume")):  # fmt: skip
        res = sw2_here("train", str(path), "--out", str(tmp_path / "o"), *flags, cwd=tmp_path)
        assert res.returncode == 2 and needle in res.stderr, res.stderr
