"""constant: the full lr from the end of the warm-up on."""

from __future__ import annotations

from sw2.plugins import SCHEDULES
from sw2.spec import TrainSpec


@SCHEDULES.register("constant")
def constant(train: TrainSpec, p: float) -> float:
    return 1.0
