"""The learning-rate finder: an exponential lr sweep on a fresh copy of the model, and fastai's "valley"
suggestion (a point in the longest stretch where the smoothed loss keeps falling).

The sweep trains a throw-away model built like the real one, so the weights training starts from are
untouched. `lr: auto` in the spec uses the suggestion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sw2.data.dataset import Prepared
from sw2.engine.context import Context
from sw2.engine.hardware import device_for
from sw2.engine.step import SupervisedStep
from sw2.engine.trainable import SUPERVISED
from sw2.errors import UserError
from sw2.preflight.recipe import subset
from sw2.spec import Spec
from sw2.tasks import Task


@dataclass
class LRSweep:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's valley: the longest run of decreasing loss; a point 1/2 of a third into it past its first third."""
    n = len(losses)
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end, start = i, i - run[i]
    third = (end - start) / 3
    return lrs[min(n - 1, start + int(third) + int(third / 2))]


class SweepStep(SupervisedStep):
    """The training step at the sweep's lr: every param group at `lr` times its scale, but Muon's, which stay
    at muon_lr (their `lr_scale` is muon_lr / the sweep's lowest lr, which the optimizer was made with)."""

    lr = 0.0

    def set_lr(self, progress: float) -> None:
        for g in self.optimizer.param_groups:
            if not g.get("muon"):
                g["lr"] = self.lr * g["lr_scale"]


def sweep(spec: Spec, p: Prepared, task: Task, steps: int = 100, lo: float = 1e-6, hi: float = 10.0) -> LRSweep:
    """`steps` steps of the training step on the spec's device (fp32), the lr rising from `lo` to `hi`; stops
    where the smoothed loss is no longer finite or four times its lowest."""
    cfg = spec.train.model_copy(update={"lr": lo})
    trainable = task.trainable(spec.model_copy(update={"train": cfg}), p)
    if not trainable.has(SUPERVISED):
        raise UserError(f"train.lr: auto sweeps a supervised loss, which task {task.name} lacks; give a number")
    model = trainable.model
    device = device_for(cfg)
    step = SweepStep(model, task, cfg)
    model.to(device).train()
    ctx = Context(device)
    bs = min(cfg.batch_size, len(p.train))
    data = subset(p.train, min(len(p.train), steps * bs), cfg.seed)
    lrs, losses, avg, best = [], [], 0.0, math.inf
    for i in range(steps):
        step.lr = lo * (hi / lo) ** (i / (steps - 1))
        idx = torch.arange(i * bs, (i + 1) * bs) % len(data)
        ctx.step = i
        value = step.train_on(data, idx, ctx).item()  # the loss before this step's update
        if not math.isfinite(value):
            break
        avg = 0.9 * avg + 0.1 * value
        smooth = avg / (1 - 0.9 ** (i + 1))
        lrs.append(step.lr)
        losses.append(smooth)
        best = min(best, smooth)
        if smooth > 4 * best and i > 10:
            break
    return LRSweep(lrs, losses, valley(lrs, losses) if len(lrs) > 2 else lo)
