"""The validation of a task that learns a target from examples: its loss and metric on a held-out split."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine.predict import predict

if TYPE_CHECKING:
    from sw2.tasks import Task


def validate(
    model: nn.Module,
    task: Task,
    val: TensorSet,
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
) -> tuple[float, float]:
    """(loss, metric) on `val`, a chunk of `task.chunk` examples at a time (language models' outputs are
    too large to hold for the whole split)."""
    step = task.chunk or max(1, len(val))
    loss = metric = 0.0
    for i in range(0, len(val), step):
        inputs = {k: v[i : i + step] for k, v in val.inputs.items()}
        out, y = predict(model, inputs, device=device, autocast=autocast), val.target[i : i + step]
        loss += task.loss(out, y).item() * len(y) / len(val)
        metric += task.score(out, y) * len(y) / len(val)
    return loss, metric
