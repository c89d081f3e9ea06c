"""A training step: what one batch does to the weights. `fit` says when and how often, a step says what.

`TrainStep` is the contract: the step owns its optimizers, trains on one batch of the trainable's stream and
tells `fit` what else a checkpoint must hold to resume exactly (`state_dict`: its optimizers). The modules it
trains are the trainable's (sw2/engine/trainable.py), which `fit` moves, switches to train mode and
checkpoints. `SupervisedStep` is the step of every task that learns a target from examples; a new kind of
training (a GAN: two networks, two optimizers, no target) subclasses `TrainStep` in its task's trainable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine.context import Context
from sw2.engine.optim import lr_factor, make_optimizer
from sw2.spec import TrainSpec

if TYPE_CHECKING:
    from sw2.tasks import Task


class TrainStep:
    def to(self, device: torch.device) -> None:
        """Move what the step holds besides the trainable's modules (a teacher) to `device`, before training."""

    def state_dict(self) -> dict[str, Any]:
        """What else an exact resume needs (optimizer states); tensors, numbers, strings and containers only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output; raise (KeyError, ValueError...) where it does not fit."""

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        """Train on one batch (inputs by name, its targets (empty where a stream has none), its examples'
        indices, all on `ctx.device`); return its loss, detached, for the progress bar and the history."""
        raise NotImplementedError

    def train_on(self, data: TensorSet, idx: torch.Tensor, ctx: Context) -> torch.Tensor:
        """This step on the examples `idx` of `data` (a CPU index), moved to `ctx.device`, without augmentation:
        for a tool that drives a step by hand (the pre-flight's short trainings)."""
        batch = {k: v[idx].to(ctx.device) for k, v in data.inputs.items()}
        return self(batch, data.target[idx].to(ctx.device), idx.to(ctx.device), ctx)


class SupervisedStep(TrainStep):
    """Inputs to outputs to the task's loss: the lr of each param group at `ctx.progress` (the schedule's
    factor times the group's `lr_scale`), the forward pass under autocast at `ctx.autocast`, the task's loss
    with label smoothing (per example, reduced by `ctx.reduce_losses` where a callback weighs them), and
    every `ctx.accumulate` batches gradient clipping and an optimizer update."""

    def __init__(self, model: nn.Module, task: Task, train: TrainSpec) -> None:
        self.model, self.task, self.train_spec = model, task, train
        self.optimizer = make_optimizer(model, train)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    def set_lr(self, progress: float) -> None:
        """The lr schedule (a subclass may sweep instead, as the lr finder does)."""
        base = self.train_spec.lr * lr_factor(self.train_spec, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = base * group["lr_scale"]

    def loss(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        smoothing = self.train_spec.label_smoothing
        with torch.autocast(ctx.device.type, dtype=ctx.autocast or torch.float32, enabled=ctx.autocast is not None):
            out = self.model(batch)
            if ctx.reduce_losses is None:
                return self.task.loss(out, target, smoothing)
            return ctx.reduce_losses(self.task.example_losses(out, target, smoothing), idx)

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        self.set_lr(ctx.progress)
        loss = self.loss(batch, target, idx, ctx)
        (loss / ctx.accumulate).backward()
        if ctx.updates:
            if self.train_spec.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.train_spec.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()
