"""The callback contract: what a callback may do at each point of `fit`, in the style of Keras and Lightning.

Every hook does nothing by default; a callback overrides the few it needs. `fit` calls them in list order:
the spec's callbacks first (`callbacks_for`), then the caller's. Order within one batch: `on_batch_begin`,
the step, `on_batch_end`; within one epoch: `on_epoch_begin`, `epoch_order`, the batches, validation,
`on_epoch_end`, then the checkpoint (so a checkpoint holds what `on_epoch_end` did). A callback that keeps
state across epochs returns it from `state_dict` (tensors, numbers, strings and containers only), and the
checkpoint carries it to a resumed run.
"""

from __future__ import annotations

from typing import Any

import torch

from sw2.engine.context import Context


class Callback:
    def on_train_begin(self, ctx: Context) -> None:
        """Before the first epoch, with the modules on the device (and before a resumed run's state is loaded)."""

    def on_epoch_begin(self, ctx: Context) -> None:
        """An epoch starts (`ctx.epoch` counts it)."""

    def epoch_order(self, order: torch.Tensor, ctx: Context) -> torch.Tensor:
        """The examples this epoch trains on, in order, given `order` (a CPU permutation of the training set's
        indices, or what an earlier callback made of it)."""
        return order

    def on_batch_begin(self, ctx: Context) -> None:
        """Before the step trains on a batch (`ctx.progress` is that batch's)."""

    def on_batch_end(self, ctx: Context, loss: torch.Tensor) -> None:
        """After the step (`ctx.step` counts the batch; `ctx.step % ctx.accumulate == 0` after an update)."""

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        """After validation; `row` is the epoch's history row (val_loss and val_metric where validated)."""

    def on_train_end(self, ctx: Context) -> None:
        """After the last epoch, before the model moves back to the CPU."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output; raise (KeyError, ValueError...) where it does not fit."""


def by_name(callbacks: list[Callback]) -> dict[str, Callback]:
    """Callbacks keyed for the checkpoint: by class name, a repeated one numbered (`Name#2`)."""
    named: dict[str, Callback] = {}
    for cb in callbacks:
        name = type(cb).__name__
        key, n = name, 1
        while key in named:
            n += 1
            key = f"{name}#{n}"
        named[key] = cb
    return named
