"""Stochastic gradient descent: plain, with heavy-ball momentum, and with Nesterov momentum (`train.momentum`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.plugins import OPTIMIZERS
from sw2.spec import TrainSpec


@OPTIMIZERS.register("sgd")
def sgd(model: nn.Module, groups: list[dict[str, Any]], train: TrainSpec) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=float(train.lr))


@OPTIMIZERS.register("momentum")
def momentum(model: nn.Module, groups: list[dict[str, Any]], train: TrainSpec) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=float(train.lr), momentum=train.momentum)


@OPTIMIZERS.register("nesterov")
def nesterov(model: nn.Module, groups: list[dict[str, Any]], train: TrainSpec) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=float(train.lr), momentum=train.momentum, nesterov=True)
