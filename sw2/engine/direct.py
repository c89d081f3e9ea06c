"""Training of a model that fits itself (`Model.direct`: gradient-boosted trees, a linear model solved by
L-BFGS): no epochs, batches or learning rate; one call, then the same validation row as a loop's epoch."""

from __future__ import annotations

import time

import torch

from sw2.engine.result import FitResult
from sw2.engine.trainable import Trainable
from sw2.spec import Spec


def fit_direct(trainable: Trainable, spec: Spec) -> FitResult:
    """`trainable.direct` (the model fitting itself on the training split, choosing what it chooses on folds
    of it), as a FitResult with one history row."""
    assert trainable.direct is not None
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        chose, train_loss = trainable.direct(spec.train.seed)
    seconds = time.perf_counter() - start
    model = trainable.model
    model.eval()
    row = {"epoch": 1, "step": 1, "train_loss": train_loss, "lr": 0.0, "time": round(seconds, 3),
           "threads": torch.get_num_threads(), **trainable.evaluate(None)}  # fmt: skip
    how = f"fitted directly by {type(model).__name__}"
    return FitResult(
        model=model,
        history=[row],
        stopped="completed",
        train_seconds=seconds,
        examples_per_second=trainable.batches.examples / max(seconds, 1e-9),
        epochs_done=1.0,
        extra={
            "threads": {"threads": torch.get_num_threads(), "pinned": True},
            "precision": {"precision": "fp32", "how": how},
            "shape": "",
            "length": {"epochs": None, "time_budget": spec.train.time_budget, "how": how},
            "direct": chose,
        },
    )
