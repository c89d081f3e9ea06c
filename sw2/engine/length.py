"""How long to train when the spec does not say: epochs from the data's size, within a time budget.

A small data set needs many passes, a large one few: the epochs fall with the square root of the number of
training examples, so the examples seen still grow with it (about 12 epochs for MNIST's 55,000 images, where
the examples/mnist.yaml recipe with 12 epochs instead of its 3 beat the seed's Keras CNN on a new 28x28 data
set; 100 for a thousand rows; 3 from about two million). The time budget caps it: `train.time_budget`
if given, else `DEFAULT_BUDGET`; the lr schedule follows the clock where the budget runs out first, so a slow
machine still anneals fully. Given `epochs`, the spec decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sw2.spec import TrainSpec

DEFAULT_BUDGET = 600.0  # seconds: a chosen length never trains longer unless time_budget says so
REFERENCE_EXAMPLES, REFERENCE_EPOCHS = 55_000, 12
MIN_EPOCHS, MAX_EPOCHS = 3, 100


@dataclass(frozen=True)
class Length:
    epochs: float
    time_budget: float | None
    how: str

    def to_json(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "time_budget": self.time_budget, "how": self.how}


def auto_epochs(n: int) -> int:
    """Epochs for `n` training examples: REFERENCE_EPOCHS at REFERENCE_EXAMPLES, scaled by 1/sqrt(n)."""
    scaled = REFERENCE_EPOCHS * math.sqrt(REFERENCE_EXAMPLES / max(n, 1))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(scaled))))


def plan(train: TrainSpec, n: int) -> Length:
    """The epochs and time budget of a run on `n` training examples."""
    if train.epochs is not None:
        return Length(train.epochs, train.time_budget, "spec: train.epochs")
    epochs = auto_epochs(n)
    budget = train.time_budget or DEFAULT_BUDGET
    given = "train.time_budget" if train.time_budget else "the default budget"
    return Length(epochs, budget, f"auto: {epochs} epochs for {n:,} training examples, within {budget:g} s ({given})")
