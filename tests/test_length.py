"""The training length a spec without epochs gets: from the data's size, within a budget."""

from __future__ import annotations

import sw2
from sw2.engine.length import DEFAULT_BUDGET, auto_epochs, plan
from sw2.spec import TrainSpec


def test_more_passes_over_less_data_and_more_examples_seen_over_more():
    sizes = [100, 1_000, 10_000, 55_000, 500_000, 5_000_000]
    epochs = [auto_epochs(n) for n in sizes]
    assert epochs == sorted(epochs, reverse=True) and epochs[0] == 100 and epochs[-1] == 3
    assert auto_epochs(55_000) == 12
    seen = [e * n for e, n in zip(epochs, sizes)]
    assert seen == sorted(seen)


def test_the_spec_decides_when_it_says():
    assert plan(TrainSpec(epochs=5), 10).epochs == 5 and plan(TrainSpec(epochs=5), 10).time_budget is None
    chosen = plan(TrainSpec(), 55_000)
    assert chosen.epochs == 12 and chosen.time_budget == DEFAULT_BUDGET and chosen.how.startswith("auto")
    assert plan(TrainSpec(time_budget=30), 55_000).time_budget == 30


def test_a_spec_without_epochs_trains_the_chosen_length(tmp_path):
    spec = {"data": {"source": "package", "name": "wine"}, "model": {"name": "mlp"}}  # the loop's epochs
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, check=False)
    t = bundle.metrics["training"]
    assert t["length"]["how"].startswith("auto") and t["epochs"] == t["length"]["epochs"]
    assert t["length"]["epochs"] == auto_epochs(bundle.metrics["data"]["train"]) == 100
    assert bundle.metrics["test"]["accuracy"] >= 0.9
