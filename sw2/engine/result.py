"""What a run of `fit` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class FitResult:
    model: nn.Module  # the trainable's network (a ModuleDict of them where it has several)
    history: list[dict[str, Any]]
    stopped: str  # completed | early_stopping | time_budget
    train_seconds: float
    examples_per_second: float
    best_epoch: int | None = None
    epochs_done: float = 0.0  # steps / full-data steps per epoch: fractional where a time budget stops
    # mid-epoch; with prune_easy the epochs are shorter, and more are begun than done
    extra: dict[str, Any] = field(default_factory=dict)
