"""Training of a model that fits itself (`Model.direct`: gradient-boosted trees, a linear model solved by
L-BFGS): no epochs, batches or learning rate; one call, then the same validation row as a loop's epoch."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.spec import Spec
from sw2.tasks import Task

if TYPE_CHECKING:
    from sw2.engine.loop import FitResult


def fit_direct(model: nn.Module, task: Task, train: TensorSet, val: TensorSet, spec: Spec) -> FitResult:
    """`model.fit_directly` on the training split (which chooses what it chooses on folds of it), as a FitResult."""
    from sw2.engine.loop import FitResult, validate

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        chose = model.fit_directly(train, task.discrete, spec.train.seed)
    seconds = time.perf_counter() - start
    model.eval()
    row = {"epoch": 1, "step": 1, "train_loss": validate(model, task, train)[0], "lr": 0.0,
           "time": round(seconds, 3), "threads": torch.get_num_threads()}  # fmt: skip
    if len(val):
        row["val_loss"], row["val_metric"] = validate(model, task, val)
    how = f"fitted directly by {type(model).__name__}"
    return FitResult(
        model=model,
        history=[row],
        stopped="completed",
        train_seconds=seconds,
        examples_per_second=len(train) / max(seconds, 1e-9),
        epochs_done=1.0,
        extra={
            "threads": {"threads": torch.get_num_threads(), "pinned": True},
            "precision": {"precision": "fp32", "how": how},
            "shape": "",
            "length": {"epochs": None, "time_budget": spec.train.time_budget, "how": how},
            "direct": chose,
        },
    )
