"""How training will run here: the thread count and the precision, each chosen by timing real steps.

Short trainings of the spec's model on a slice of the training data, at the spec's batch size, through the
same `fit` as training. The first one's thread probe (all cores, one fewer, one: see
sw2/engine/threads.py) gives the count training starts from; where `precision: auto` rests on the CPU's
flags alone (they promise native bf16), a few steps in each precision decide it, and the verdict is cached
(sw2/engine/precision.py) for training and later runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sw2.engine import FitResult, fit, hardware, precision, threads
from sw2.preflight.recipe import Data, short_spec, subset
from sw2.preflight.verdict import Verdict
from sw2.spec import Spec
from sw2.tasks import Task

PRECISION_STEPS = 6  # timed steps per precision, after as many untimed


def _steps(spec: Spec, p: Data, task: Task, steps: int, **train: Any) -> FitResult:
    """`steps` training steps on a slice of the training data (as many epochs of it as that takes), no
    validation."""
    bs = min(spec.train.batch_size, len(p.train))
    data = subset(p.train, min(len(p.train), steps * bs), spec.train.seed)
    short = short_spec(spec, epochs=steps / max(1, len(data) // bs), **train)
    trainable = task.trainable(short, p, train=data, val=data.take(np.arange(0)), init_on=p.train)
    return fit(trainable, short, verbose=False)


def _threads(spec: Spec, p: Data, task: Task) -> tuple[int, str, str]:
    """The count training starts with, what was measured, and the model's shape key (sw2/engine/precision.py:
    the short run's model and batch size are training's)."""
    threads.forget()  # measure the machine as it is now, not as an earlier run in this process found it
    probe_steps = 2 + 6 * len(threads.candidates(hardware.cores()))  # 2 set-up steps, 1 + 5 per count at most
    extra = _steps(spec, p, task, probe_steps).extra
    record, shape = extra["threads"], extra["shape"]
    if record.get("pinned"):
        why = "train.threads" if spec.train.threads else "deterministic" if spec.train.deterministic else "not a CPU"
        return record["threads"], f"threads {record['threads']} (pinned: {why})", shape
    if not record["probes"]:
        why = "one core" if len(record["choices"]) < 2 else "too few steps to time"
        return record["threads"], f"threads {record['threads']} ({why})", shape
    probe = record["probes"][-1]
    ms = ", ".join(f"{c}: {t:.1f}" for c, t in probe["ms_per_step"].items())
    return probe["chosen"], f"threads {probe['chosen']} of {hardware.cores()} (ms/step by thread count: {ms})", shape


def _seconds_per_step(spec: Spec, p: Data, task: Task, threads: int):
    def timed(dtype: torch.dtype | None) -> float:
        """2 x PRECISION_STEPS steps: the later epochs' are timed (the first steps warm the kernels up)."""
        name = "fp32" if dtype is None else "bf16"
        history = _steps(spec, p, task, 2 * PRECISION_STEPS, precision=name, threads=threads).history
        warm = next(r for r in history if r["step"] >= PRECISION_STEPS)
        last = history[-1]
        if last["step"] == warm["step"]:  # one epoch held every step: time them all
            return last["time"] / last["step"]
        return (last["time"] - warm["time"]) / (last["step"] - warm["step"])

    return timed


def speed(spec: Spec, p: Data, task: Task) -> Verdict:
    """Always a PASS: the choices made and the step times measured (fewer threads than cores may win where
    other work uses the CPU, or where the model is too small to share out)."""
    threads, said, shape = _threads(spec, p, task)
    device = hardware.device_for(spec.train)
    choice = precision.decide(spec.train, device, shape, _seconds_per_step(spec, p, task, threads))
    return Verdict("speed", "PASS", f"{said}; precision {choice.name} ({choice.how})")
