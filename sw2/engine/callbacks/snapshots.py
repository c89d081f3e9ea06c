"""Snapshot ensembles: the weights at the end of each of the lr schedule's K cycles (`train.snapshots`; the
cycles are `lr_factor`'s), kept on the CPU; the last is the run's final weights (after lookahead or early
stopping have set them). The pipeline averages them into one `ensemble` model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context


def _copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class Snapshots(Callback):
    def __init__(self, model: nn.Module, cycles: int) -> None:
        self.model, self.cycles = model, cycles
        self.saved: list[dict[str, torch.Tensor]] = []

    def on_batch_begin(self, ctx: Context) -> None:
        """A cycle has ended where the batch about to train is the next cycle's (its lr restarts)."""
        ends = len(self.saved) + 1
        if ends < self.cycles and ctx.progress >= ends / self.cycles and ctx.step % ctx.accumulate == 0:
            self.saved.append(_copy(self.model))

    def on_train_end(self, ctx: Context) -> None:
        self.saved.append(_copy(self.model))

    def state_dict(self) -> dict[str, Any]:
        return {"saved": self.saved}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved = list(state["saved"])
