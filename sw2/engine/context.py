"""Where training stands: what `fit` tells its step and its callbacks, and what callbacks tell it back.

One `Context` lives for one run of `fit` (a tool that drives a step by hand, as the pre-flight does, makes its
own with the device and leaves the rest at their defaults). `step` counts batches: while a batch is under way
(`on_batch_begin`, the step itself) it counts the batches before it; from `on_batch_end` on, that batch too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Context:
    # set by fit
    device: torch.device
    autocast: torch.dtype | None = None  # the training precision for autocast; None: plain fp32
    accumulate: int = 1  # batches per optimizer update
    batch_size: int = 1
    examples: int = 0  # in the training set
    total_steps: int = 1  # batches the run plans
    generator: torch.Generator | None = None  # the data order's (permutations, augmentation, pruning draws)
    epoch: int = 0  # the epoch under way, from 1
    step: int = 0  # batches done
    progress: float = 0.0  # share of training done: of the steps, or of the time budget if that runs out first
    history: list[dict[str, Any]] = field(default_factory=list)  # a row per epoch done
    # the examples an epoch trains on, in order, from a permutation: what callbacks make of it (`epoch_order`);
    # set by fit, read by streams that permute examples
    reorder: Callable[[torch.Tensor], torch.Tensor] = lambda order: order
    # set by callbacks
    # (per-example losses, their indices in the training set) -> the batch loss, where a callback weighs
    # examples (easy-example pruning); None: the batch mean
    reduce_losses: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    stop: str | None = None  # why training ends before its steps are done (early_stopping, time_budget)
    best_epoch: int | None = None  # the epoch whose weights the run returns, where a callback restores one

    @property
    def updates(self) -> bool:
        """Whether the batch under way ends with an optimizer update (every `accumulate` batches)."""
        return (self.step + 1) % self.accumulate == 0
