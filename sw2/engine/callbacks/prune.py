"""Easy-example pruning as a callback: each epoch leaves out some well-learned examples and weighs the rest
(sw2/engine/prune.py), until `until` of training is done; the step's loss is reduced through it, which records
each example's loss for the next epoch's choice."""

from __future__ import annotations

from typing import Any

import torch

from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context
from sw2.engine.prune import EasyPruner


class PruneEasy(Callback):
    def __init__(self, rate: float, until: float) -> None:
        self.rate, self.until = rate, until
        self.pruner: EasyPruner | None = None

    def on_train_begin(self, ctx: Context) -> None:
        self.pruner = EasyPruner(ctx.examples, self.rate, ctx.device)
        ctx.reduce_losses = self.pruner.loss

    def epoch_order(self, order: torch.Tensor, ctx: Context) -> torch.Tensor:
        assert self.pruner is not None and ctx.generator is not None
        return self.pruner.epoch(order, ctx.generator, ctx.progress < self.until, ctx.batch_size * ctx.accumulate)

    def state_dict(self) -> dict[str, Any]:
        assert self.pruner is not None
        return {"scores": self.pruner.scores.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.pruner is not None
        scores = state["scores"]
        if scores.shape != self.pruner.scores.shape:
            raise ValueError("the pruning scores do not fit the training set")
        self.pruner.scores = scores.to(self.pruner.scores.device)
