"""Optimizers and learning-rate schedules. A schedule maps training progress (0..1) to an lr multiplier."""

from __future__ import annotations

import math

import torch
from torch import nn

from sw2.engine.muon import Muon
from sw2.errors import UserError
from sw2.models.base import Model
from sw2.spec import TrainSpec


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """A pretrained model's layer groups, bottom to top (empty for models trained from scratch, and for a
    plain torch module, which has none of sw2's model hooks)."""
    return model.layer_groups() if isinstance(model, Model) else []


def make_optimizer(model: nn.Module, train: TrainSpec) -> torch.optim.Optimizer:
    """Weight decay on weight matrices and conv kernels, never on other biases. Norm-layer parameters (and those a
    model lists in `norm_like_parameters()`) get `norm_lr_scale` times the lr and `norm_weight_decay`, and a
    pretrained model's lower layer groups `layer_lr_decay` per group below the top (each group's `lr_scale`,
    applied by the loop). With `muon`, the kernels of ungrouped conv layers form Muon groups (`muon: True`) at
    `muon_lr` (no weight decay: Muon keeps their norm fixed); their `lr_scale` is `muon_lr / lr`, so the
    loop's schedule moves them too."""
    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    in_norm = {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}
    norm_like = model.norm_like_parameters() if isinstance(model, Model) else []  # e.g. a shift after a frozen layer
    extra = {id(p) for p in norm_like}  # they may be frozen for now
    in_norm |= extra
    stack = layer_groups(model)
    depth_scale = {id(p): train.layer_lr_decay ** (len(stack) - 1 - i) for i, g in enumerate(stack) for p in g}
    # every parameter that may learn, including those gradual unfreezing or `set_progress` switch on later
    params = [p for p in model.parameters() if p.requires_grad or id(p) in depth_scale or id(p) in extra]
    if train.lr == "auto":
        raise UserError("train.lr is 'auto': resolve it first (sw2.preflight.resolve_lr runs the lr finder)")
    lr, opt = train.lr, train.optimizer
    # Muon takes the kernels of ordinary convs; grouped (depthwise) kernels are not one matrix each
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1}
    by_key: dict[tuple[float, float, bool], list[nn.Parameter]] = {}
    for p in params:
        norm = id(p) in in_norm
        muon = opt == "muon" and id(p) in kernels
        decay = train.norm_weight_decay if norm else train.weight_decay if p.ndim >= 2 and not muon else 0.0
        scale = depth_scale.get(id(p), 1.0) * (train.norm_lr_scale if norm else 1.0)
        scale *= train.muon_lr / lr if muon else 1.0
        by_key.setdefault((decay, scale, muon), []).append(p)
    groups = [{"params": ps, "weight_decay": d, "lr_scale": s, "muon": m} for (d, s, m), ps in by_key.items()]
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    if opt == "muon":
        if not any(g["muon"] for g in groups):
            raise UserError(
                f"train.optimizer: muon updates the kernels of (ungrouped) conv layers and model "
                f"'{type(model).__name__}' has none that train (frozen layers do not count); use nesterov or adamw"
            )
        return Muon(groups, lr=lr, momentum=train.momentum)
    for g in groups:
        del g["muon"]
    if opt == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if opt in ("momentum", "nesterov"):
        return torch.optim.SGD(groups, lr=lr, momentum=train.momentum, nesterov=opt == "nesterov")
    if opt == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)


def lr_factor(train: TrainSpec, progress: float) -> float:
    """The lr multiplier at `progress` (share of training done): linear warm-up, then the schedule."""
    p = min(max(progress, 0.0), 1.0)
    w = train.warmup
    if train.schedule == "onecycle":  # linear up to the peak, then linear down to zero
        return p / w if p < w else max(0.0, (1 - p) / (1 - w))
    if p < w:
        return p / w
    if train.schedule == "constant":
        return 1.0
    q = (p - w) / (1 - w) if w < 1 else 1.0
    if train.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * q))
    return train.step_gamma ** math.floor(q / train.step_every)  # step
