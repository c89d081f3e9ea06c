"""Learning-rate schedules as plug-ins: each module of this package registers one in
`sw2.plugins.SCHEDULES`, and its name is at once a valid `train.schedule`. A new schedule is one new file,
its name declared in `sw2.plugins` (so that the spec knows it without importing torch).

A registered schedule is a function `(train, p) -> float`: the lr multiplier once the linear warm-up is
over, at `p`, the share of training done (`train.warmup <= p <= 1`); it should give 1 at the end of the
warm-up. `sw2.engine.optim.lr_factor` runs the warm-up and then the spec's schedule.
"""

from __future__ import annotations

from collections.abc import Callable

from sw2.spec import TrainSpec

Schedule = Callable[[TrainSpec, float], float]


def after_warmup(train: TrainSpec, p: float) -> float:
    """The share of the training after the warm-up that is done at `p` (0..1)."""
    w = train.warmup
    return (p - w) / (1 - w) if w < 1 else 1.0
