"""muon: the kernels of ungrouped conv layers take orthogonalised Nesterov updates at `train.muon_lr`, every
other parameter Nesterov SGD in its own group (the optimizer itself: `sw2.engine.muon`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.engine.muon import Muon
from sw2.errors import UserError
from sw2.plugins import OPTIMIZERS
from sw2.spec import TrainSpec


@OPTIMIZERS.register("muon")
def muon(model: nn.Module, groups: list[dict[str, Any]], train: TrainSpec) -> torch.optim.Optimizer:
    """The kernels move into groups of their own (`muon: True`) with no weight decay (Muon keeps their norm
    fixed) and `lr_scale` times `muon_lr / lr`, so that the loop's schedule moves them too. Grouped
    (depthwise) kernels are not one matrix each: they stay with the SGD groups."""
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1}
    lr = float(train.lr)
    by_key: dict[tuple[float, float, bool], list[nn.Parameter]] = {}
    for g in groups:
        for p in g["params"]:
            if id(p) in kernels:
                by_key.setdefault((0.0, g["lr_scale"] * (train.muon_lr / lr), True), []).append(p)
            else:
                by_key.setdefault((g["weight_decay"], g["lr_scale"], False), []).append(p)
    if not any(kernel for _, _, kernel in by_key):
        raise UserError(
            f"train.optimizer: muon updates the kernels of (ungrouped) conv layers and model "
            f"'{type(model).__name__}' has none that train (frozen layers do not count); use nesterov or adamw"
        )
    regrouped = [
        {"params": ps, "weight_decay": d, "lr_scale": s, "lr": lr * s, "muon": m} for (d, s, m), ps in by_key.items()
    ]
    return Muon(regrouped, lr=lr, momentum=train.momentum)
