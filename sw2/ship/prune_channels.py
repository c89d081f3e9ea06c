"""Structured pruning that makes a network faster: whole hidden channels (a conv's filters, an MLP's units)
are removed, and the model is rebuilt physically smaller from its kwargs (smaller `widths`), so it does
fewer multiply-adds. Masking weights to zero (`torch.nn.utils.prune`) saves nothing at inference time; it
is not used here.

A channel's importance is how much the next layer hears of it: its mean absolute activation on training
examples times the L2 norm of the weights that read it. (A filter's own norm says little in these nets:
batch norm rescales every channel to unit variance.) Each layer keeps its most important channels, the
same count for every layer of a `widths` entry; the pruned model then fine-tunes briefly with the bundle's
own recipe (`fine_tune`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from sw2 import log
from sw2.engine import fit
from sw2.engine.distill import Live, Teaching
from sw2.engine.length import plan
from sw2.engine.predict import predict
from sw2.errors import UserError
from sw2.models import build
from sw2.models.base import ChannelGroup, Model
from sw2.spec import Spec
from sw2.tasks import Task

DISTILL_TEMPERATURE = 2.0  # Hinton et al.'s usual softening; not tuned here


def kept_count(width: int, ratio: float) -> int:
    """Channels a layer of `width` keeps when `ratio` of them go (at least one)."""
    return max(1, round(width * (1 - ratio)))


@torch.no_grad()
def importance(model: Model, groups: list[ChannelGroup], inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Per group, each channel's mean |activation| on `inputs` times the norm of the weights that read it."""
    sums: list[torch.Tensor | None] = [None] * len(groups)

    def hook(k: int) -> Any:
        def record(_: nn.Module, __: Any, out: torch.Tensor) -> None:
            dims = [d for d in range(out.dim()) if d != 1]  # every dimension but the channels'
            part = out.detach().abs().float().mean(dim=dims) * len(out)
            sums[k] = part if sums[k] is None else sums[k] + part

        return record

    handles = [g.activation.register_forward_hook(hook(k)) for k, g in enumerate(groups)]
    try:
        predict(model, inputs, batch_size=256)
    finally:
        for h in handles:
            h.remove()
    state = model.state_dict()
    n = len(next(iter(inputs.values())))
    scores = []
    for g, s in zip(groups, sums):
        assert s is not None  # every group's activation ran
        reads = sum(state[name].float().transpose(0, dim).flatten(1).pow(2).sum(1) for name, dim in g.read)
        scores.append(s / max(n, 1) * reads.sqrt())
    return scores


@torch.no_grad()
def recalibrate(model: nn.Module, inputs: dict[str, torch.Tensor], batch_size: int = 128) -> None:
    """Batch norms' running statistics measured again on `inputs`: a layer whose input channels were removed
    gives outputs of another mean and variance (on digits, 50% pruned: 62% accuracy before, 80% after)."""
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches
        m.train()
    n = len(next(iter(inputs.values())))
    for i in range(0, n - 1, batch_size):  # no batch of one: BatchNorm1d refuses it in training mode
        model({k: v[i : i + batch_size] for k, v in inputs.items()})
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def prune(
    model: Model, name: str, kwargs: dict[str, Any], ratio: float, inputs: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], Model]:
    """The model `name` rebuilt with `ratio` of each hidden layer's channels removed (the least important on
    `inputs`, a sample of training examples), with the kept channels' weights: (its kwargs, the model)."""
    if not 0 < ratio < 1:
        raise UserError(f"--prune: {ratio:g} is not a share of channels; give a number between 0 and 1 (e.g. 0.5)")
    groups = model.channel_groups()
    if not groups:
        raise UserError(
            f"--prune: model {name} has no channels sw2 can prune (convnet and mlp have); use --quantize alone"
        )
    widths = [kept_count(w, ratio) for w in kwargs["widths"]]
    state = model.state_dict()
    for g, score in zip(groups, importance(model, groups, inputs)):
        keep = score.topk(widths[g.width]).indices.sort().values
        for key, dim in g.made + g.read:
            state[key] = state[key].index_select(dim, keep)
    pruned_kwargs = {**kwargs, "widths": widths}
    pruned = build(name, pruned_kwargs)
    pruned.load_state_dict(state, strict=True)
    recalibrate(pruned, inputs)
    before, after = (sum(p.numel() for p in m.parameters()) for m in (model, pruned))
    log.info(f"sw2: pruned widths {kwargs['widths']} -> {widths}: {before:,} -> {after:,} parameters")
    return pruned_kwargs, pruned


def fine_tune(
    model: Model,
    built: tuple[str, dict[str, Any]],
    task: Task,
    data: Any,
    spec: Spec,
    share: float,
    teacher: nn.Module | None = None,
    alpha: float = 0.5,
) -> Model:
    """Train the pruned `model` (registered as `built`: name, kwargs) briefly on `data.train`, judged on
    `data.val`, with the spec's own recipe (optimizer, schedule, augmentation, lr): `share` of its epochs (at
    least one) and of its time budget; with a `teacher` (the unpruned model), `alpha` of each example's loss
    is the distance to the teacher's outputs on the same augmented batch."""
    length = plan(spec.train, len(data.train))
    epochs = float(max(1, math.ceil(length.epochs * share)))
    budget = length.time_budget * share if length.time_budget else None
    short = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": epochs, "time_budget": budget})})
    log.info(f"sw2: fine-tuning the pruned model: {epochs:g} epochs" + (f", at most {budget:.0f} s" if budget else ""))
    teaching = None if teacher is None else Teaching(Live(copy.deepcopy(teacher)), DISTILL_TEMPERATURE, alpha)
    trainable = task.trainable(short, data, model=(*built, model), teaching=teaching)
    return fit(trainable, short, verbose=False).model
