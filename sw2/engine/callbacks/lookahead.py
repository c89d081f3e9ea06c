"""Lookahead as a callback: the slow weights (sw2/engine/lookahead.py) pulled after every `every`-th optimizer
update, and training ending on them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context
from sw2.engine.lookahead import Lookahead


class LookaheadWeights(Callback):
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.slow: Lookahead | None = None

    def on_train_begin(self, ctx: Context) -> None:
        self.slow = Lookahead(self.model)  # of the weights on the device

    def on_batch_end(self, ctx: Context, loss: torch.Tensor) -> None:
        assert self.slow is not None
        if ctx.step % ctx.accumulate == 0:  # after an optimizer update
            self.slow.step(self.model, ctx.step // ctx.accumulate, ctx.progress)

    def on_train_end(self, ctx: Context) -> None:
        assert self.slow is not None
        self.slow.finish(self.model)

    def state_dict(self) -> dict[str, Any]:
        assert self.slow is not None
        return {"slow": self.slow.slow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.slow is not None
        slow = state["slow"]
        if [t.shape for t in slow] != [t.shape for t in self.slow.slow]:
            raise ValueError("the lookahead weights do not fit the model")
        self.slow.slow = [s.to(t.device) for s, t in zip(slow, self.slow.slow)]  # saved on any device
