"""linear: the lr falls in a straight line from the end of the warm-up to 0 at the end of training (the RL
Zoo's `lin_` schedules, Stable-Baselines3's linear_schedule)."""

from __future__ import annotations

from sw2.engine.schedules import after_warmup
from sw2.plugins import SCHEDULES
from sw2.spec import TrainSpec


@SCHEDULES.register("linear")
def linear(train: TrainSpec, p: float) -> float:
    return max(0.0, 1.0 - after_warmup(train, p))
