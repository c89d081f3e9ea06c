"""Gradual unfreezing (ULMFiT): a pretrained model's layer groups start learning one after another, top
first, over the first `until` share of training; the bottom group learns from there on."""

from __future__ import annotations

from torch import nn

from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context


class GradualUnfreezing(Callback):
    def __init__(self, groups: list[list[nn.Parameter]], until: float) -> None:
        self.groups, self.until = groups, until  # bottom to top

    def on_batch_begin(self, ctx: Context) -> None:
        n = len(self.groups)
        learning = min(n, 1 + int(ctx.progress / self.until * n))
        for depth, params in enumerate(self.groups):
            for p in params:
                p.requires_grad_(depth >= n - learning)
