"""Callbacks: everything optional in training, one file each; `callbacks_for` builds a spec's list."""

from __future__ import annotations

from torch import nn

from sw2 import log
from sw2.engine.callbacks.base import Callback, by_name
from sw2.engine.callbacks.early_stopping import EarlyStopping
from sw2.engine.callbacks.lookahead import LookaheadWeights
from sw2.engine.callbacks.model_progress import ModelProgress
from sw2.engine.callbacks.prune import PruneEasy
from sw2.engine.callbacks.unfreeze import GradualUnfreezing
from sw2.engine.optim import layer_groups
from sw2.models.base import Model
from sw2.spec import TrainSpec

__all__ = [
    "Callback",
    "EarlyStopping",
    "GradualUnfreezing",
    "LookaheadWeights",
    "ModelProgress",
    "PruneEasy",
    "by_name",
    "callbacks_for",
]


def callbacks_for(train: TrainSpec, model: nn.Module) -> list[Callback]:
    """The callbacks `train` asks for, in the order they run: the model's progress hook and gradual
    unfreezing before each batch (both set what trains), pruning, then lookahead, then early stopping (whose
    best weights, restored at the end, replace lookahead's slow ones)."""
    groups = layer_groups(model)
    if (train.unfreeze or train.layer_lr_decay < 1) and not groups:
        log.warning("train.unfreeze and train.layer_lr_decay apply to pretrained models (minilm, mobilenet); ignored")
    out: list[Callback] = []
    if isinstance(model, Model):
        out.append(ModelProgress(model))
    unfreezing = bool(train.unfreeze and groups)
    if unfreezing:
        out.append(GradualUnfreezing(groups, train.unfreeze))
    if train.prune_easy:
        out.append(PruneEasy(train.prune_easy, train.prune_easy_until))
    if train.lookahead:
        out.append(LookaheadWeights(model))
    if train.early_stopping is not None:
        out.append(EarlyStopping(model, train.early_stopping, train.unfreeze if unfreezing else 0.0))
    return out
