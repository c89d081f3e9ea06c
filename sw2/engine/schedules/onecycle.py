"""onecycle: after the linear warm-up to the peak, linearly down to zero at the end (the default)."""

from __future__ import annotations

from sw2.plugins import SCHEDULES
from sw2.spec import TrainSpec


@SCHEDULES.register("onecycle")
def onecycle(train: TrainSpec, p: float) -> float:
    return max(0.0, (1 - p) / (1 - train.warmup))
