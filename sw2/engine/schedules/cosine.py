"""cosine: half a cosine from the full lr down to zero over the training after the warm-up."""

from __future__ import annotations

import math

from sw2.engine.schedules import after_warmup
from sw2.plugins import SCHEDULES
from sw2.spec import TrainSpec


@SCHEDULES.register("cosine")
def cosine(train: TrainSpec, p: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * after_warmup(train, p)))
