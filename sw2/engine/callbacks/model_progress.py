"""Tell an sw2 model how far training is (`Model.set_progress`) before each optimizer update: a model may
change what trains with time (the convnet freezes its whitening shift past `whiten_shift_until`)."""

from __future__ import annotations

from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context
from sw2.models.base import Model


class ModelProgress(Callback):
    def __init__(self, model: Model) -> None:
        self.model = model

    def on_batch_begin(self, ctx: Context) -> None:
        if ctx.step % ctx.accumulate == 0:  # the first batch of an update: between updates
            self.model.set_progress(ctx.progress)
