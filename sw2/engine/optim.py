"""The optimizer and the lr multiplier the training loop uses, from the spec: the parameter groups that
every optimizer shares are built here, the optimizers and schedules themselves are plug-ins
(`sw2/engine/optimizers/`, `sw2/engine/schedules/`) found by name in `sw2.plugins`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.errors import UserError
from sw2.models.base import Model
from sw2.plugins import OPTIMIZERS, SCHEDULES
from sw2.spec import TrainSpec


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """A pretrained model's layer groups, bottom to top (empty for models trained from scratch, and for a
    plain torch module, which has none of sw2's model hooks)."""
    return model.layer_groups() if isinstance(model, Model) else []


def make_optimizer(model: nn.Module, train: TrainSpec) -> torch.optim.Optimizer:
    """The spec's optimizer (a plug-in of `sw2/engine/optimizers/`) over the model's parameter groups:
    weight decay on weight matrices and conv kernels, never on other biases. Norm-layer parameters (and those
    a model lists in `norm_like_parameters()`) get `norm_lr_scale` times the lr and `norm_weight_decay`, and a
    pretrained model's lower layer groups `layer_lr_decay` per group below the top (each group's `lr_scale`,
    applied by the loop)."""
    if train.lr == "auto":
        raise UserError("train.lr is 'auto': resolve it first (sw2.preflight.resolve_lr runs the lr finder)")
    return OPTIMIZERS.get(train.optimizer)(model, param_groups(model, train), train)


def param_groups(model: nn.Module, train: TrainSpec) -> list[dict[str, Any]]:
    """Every parameter that may learn (including those gradual unfreezing or `set_progress` switch on
    later), grouped by weight decay and lr scale, in the model's order."""
    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    in_norm = {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}
    norm_like = model.norm_like_parameters() if isinstance(model, Model) else []  # e.g. a shift after a frozen layer
    extra = {id(p) for p in norm_like}  # they may be frozen for now
    in_norm |= extra
    stack = layer_groups(model)
    depth_scale = {id(p): train.layer_lr_decay ** (len(stack) - 1 - i) for i, g in enumerate(stack) for p in g}
    params = [p for p in model.parameters() if p.requires_grad or id(p) in depth_scale or id(p) in extra]
    by_key: dict[tuple[float, float], list[nn.Parameter]] = {}
    for p in params:
        norm = id(p) in in_norm
        decay = train.norm_weight_decay if norm else train.weight_decay if p.ndim >= 2 else 0.0
        scale = depth_scale.get(id(p), 1.0) * (train.norm_lr_scale if norm else 1.0)
        by_key.setdefault((decay, scale), []).append(p)
    lr = float(train.lr)
    return [{"params": ps, "weight_decay": d, "lr_scale": s, "lr": lr * s} for (d, s), ps in by_key.items()]


def lr_factor(train: TrainSpec, progress: float) -> float:
    """The lr multiplier at `progress` (share of training done): linear warm-up, then the spec's schedule (a
    plug-in of `sw2/engine/schedules/`). With `snapshots: K` the warm-up and schedule run K times, one cycle
    per snapshot (Huang et al., 2017)."""
    p = min(max(progress, 0.0), 1.0)
    if train.snapshots:
        p = min(p * train.snapshots - min(int(p * train.snapshots), train.snapshots - 1), 1.0)
    w = train.warmup
    if p < w:
        return p / w
    return SCHEDULES.get(train.schedule)(train, p)
