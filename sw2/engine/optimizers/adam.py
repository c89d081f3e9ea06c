"""Adam (its weight decay an L2 term in the gradient) and AdamW (decoupled weight decay), torch's defaults
otherwise (betas 0.9, 0.999)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.plugins import OPTIMIZERS
from sw2.spec import TrainSpec


@OPTIMIZERS.register("adam")
def adam(model: nn.Module, groups: list[dict[str, Any]], train: TrainSpec) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=float(train.lr))


@OPTIMIZERS.register("adamw")
def adamw(model: nn.Module, groups: list[dict[str, Any]], train: TrainSpec) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=float(train.lr))
