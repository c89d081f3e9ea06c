"""Knowledge distillation (Hinton et al., 2015): the student learns from a teacher's softened outputs as well
as from the labels. Per example, loss = (1 - alpha) * the task's loss + alpha * the task's distillation loss
(classify: T² x KL(teacher at temperature T || student at T); regress: squared distance to the teacher's value).

Where the teacher's outputs come from is a `Teacher`: `Cached` looks them up by example (computed once, for
inputs that are not augmented, or a teacher with its own preprocessing); `Live` runs the teacher's network on
the batch the student sees (augmented inputs: each view gets its own teacher output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from sw2.engine.context import Context
from sw2.engine.step import SupervisedStep
from sw2.spec import TrainSpec

if TYPE_CHECKING:
    from sw2.tasks import Task


class Teacher:
    def __call__(self, batch: dict[str, torch.Tensor], idx: torch.Tensor, ctx: Context) -> torch.Tensor:
        """The teacher's raw outputs for the batch (`idx`: its examples' indices in the training set)."""
        raise NotImplementedError

    def to(self, device: torch.device) -> Teacher:
        return self


class Cached(Teacher):
    """Outputs computed beforehand for every training example, in the training set's order."""

    def __init__(self, outputs: torch.Tensor) -> None:
        self.outputs = outputs.float()

    def __call__(self, batch: dict[str, torch.Tensor], idx: torch.Tensor, ctx: Context) -> torch.Tensor:
        return self.outputs[idx.to(self.outputs.device)].to(ctx.device)

    def to(self, device: torch.device) -> Cached:
        self.outputs = self.outputs.to(device)
        return self


class Live(Teacher):
    """A network that reads the student's inputs, run on each batch in eval mode (at the training precision)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, batch: dict[str, torch.Tensor], idx: torch.Tensor, ctx: Context) -> torch.Tensor:
        with torch.autocast(ctx.device.type, dtype=ctx.autocast or torch.float32, enabled=ctx.autocast is not None):
            return self.model(batch).float()

    def to(self, device: torch.device) -> Live:
        self.model.to(device)
        return self


@dataclass
class Teaching:
    """A run's teacher and how much the student listens to it (what `DistillStep` needs besides the model)."""

    teacher: Teacher
    temperature: float
    alpha: float


class DistillStep(SupervisedStep):
    """`SupervisedStep` whose per-example loss mixes the labels' loss with the teacher's."""

    def __init__(
        self, model: nn.Module, task: Task, train: TrainSpec, teacher: Teacher, temperature: float, alpha: float
    ) -> None:
        super().__init__(model, task, train)
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha

    def to(self, device: torch.device) -> None:
        self.teacher.to(device)

    def loss(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        soft = self.teacher(batch, idx, ctx)
        with torch.autocast(ctx.device.type, dtype=ctx.autocast or torch.float32, enabled=ctx.autocast is not None):
            out = self.model(batch)
        hard = self.task.example_losses(out, target, self.train_spec.label_smoothing)
        losses = (1 - self.alpha) * hard + self.alpha * self.task.distill_losses(out, soft, self.temperature)
        return losses.mean() if ctx.reduce_losses is None else ctx.reduce_losses(losses, idx)
