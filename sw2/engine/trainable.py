"""The trainable thing: everything `fit` trains, in one object that a task builds from the spec and its data.

A `Trainable` says
- which networks are trained (`modules`, by name: one for a classifier, a generator and a discriminator for
  a GAN, an actor and a critic for RL); the checkpoint and the bundle hold them all;
- what one step does (`step`, a `TrainStep` with its optimizers);
- which batches an epoch yields (`batches`, a `Stream`: a seeded permutation of a `TensorSet` today; rollouts,
  a labelled + unlabelled mix, a replay stream or a rank's shard tomorrow), with its own state for an exact
  resume;
- how a checkpoint is judged (`evaluate`: the epoch's `val_loss` / `val_metric` and whatever else it adds to
  the history; early stopping, `best_epoch`, the tuner and the report read them).

`fit` (sw2/engine/loop.py) takes it and owns the rest: time budget, schedule by progress, threads, precision,
checkpoints, callbacks and TensorBoard. Tools that need more than the contract (the pre-flight's recipe
checks need a loss on held-out examples) ask for a capability in `offers`, and skip with a reason where a
trainable lacks it. Tasks build trainables (`Task.trainable`); nothing else assembles a model and a step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine.context import Context

if TYPE_CHECKING:
    from sw2.engine.step import TrainStep

Batch = tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]  # (inputs by name, target, indices)

# a capability a trainable may offer (`Trainable.offers`; a task may name its own for its own checks):
# one network trained by a SupervisedStep on a task loss of examples with targets (`supervision`)
SUPERVISED = "supervised"


class Stream:
    """What an epoch yields, as `fit` sees it. `examples` and `batch_size` size the run (epochs, steps, the
    progress bar); `epoch(ctx)` yields this epoch's batches on `ctx.device`, drawing randomness from
    `ctx.generator` (which the checkpoint carries) or from state of its own that `state_dict` returns."""

    examples: int = 1  # per epoch: what `train.epochs: auto` and the progress bar count
    batch_size: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.examples // self.batch_size)

    def to(self, device: torch.device) -> None:
        """Move what the stream holds to `device`, before the first epoch."""

    def epoch(self, ctx: Context) -> Iterator[Batch]:
        raise NotImplementedError

    def shapes(self) -> dict[str, torch.Tensor]:
        """Example inputs (any batch size) whose shapes and dtypes the precision choice is cached by."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What an exact resume needs beyond `ctx.generator` (tensors, numbers, strings and containers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output; raise (KeyError, ValueError...) where it does not fit."""


@dataclass
class Supervision:
    """What the SUPERVISED capability gives a tool: the task (its loss and score) and the examples, with
    targets, that the trainable trains on and is judged on."""

    task: Any  # sw2.tasks.Task
    train: TensorSet
    val: TensorSet


def nothing_held_out(device: torch.device | None = None) -> dict[str, float]:
    return {}


@dataclass
class Trainable:
    modules: dict[str, nn.Module]
    step: TrainStep
    batches: Stream
    evaluate: Callable[[torch.device | None], dict[str, float]] = nothing_held_out
    metric: str = ""  # what `val_metric` is (the progress line names it); higher is better
    offers: frozenset[str] = frozenset()
    # how a bundle rebuilds each module: (registered model name, its kwargs), by module name
    built: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # a model that fits itself in one call (trees, a solved linear model): seed -> (what it chose, train loss)
    direct: Callable[[int], tuple[dict[str, Any], float]] | None = None
    supervision: Supervision | None = None  # where it offers SUPERVISED

    @cached_property
    def model(self) -> nn.Module:
        """The one network, or all of them in a ModuleDict (what spec callbacks act on and a run returns)."""
        if len(self.modules) == 1:
            return next(iter(self.modules.values()))
        return nn.ModuleDict(self.modules)

    def has(self, capability: str) -> bool:
        return capability in self.offers
