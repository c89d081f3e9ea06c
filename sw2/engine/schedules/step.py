"""step: the lr times `train.step_gamma` after every `train.step_every` of the training after the warm-up."""

from __future__ import annotations

import math

from sw2.engine.schedules import after_warmup
from sw2.plugins import SCHEDULES
from sw2.spec import TrainSpec


@SCHEDULES.register("step")
def step(train: TrainSpec, p: float) -> float:
    return train.step_gamma ** math.floor(after_warmup(train, p) / train.step_every)
