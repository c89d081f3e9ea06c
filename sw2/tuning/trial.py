"""One trial of a search: the spec at a search point, trained on the train split and scored on the val split.

A search never sees the test split: the data a trial gets (`Searchable`) holds train and val only, so the
test figure of the best model, reported after the search, is an honest estimate. Each epoch's val metric is
reported to Optuna, whose pruner may stop a trial that trails the others at the same epoch.

A task that learns a target from examples (its trainable offers SUPERVISED) is scored by the trained model's
outputs on the val examples; any other (an image generator) by its trainable's own `evaluate` after the last
epoch: the `val_metric` of its final history row.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from sw2.data.dataset import TensorSet
from sw2.data.encode import Encoder
from sw2.engine import FitResult, fit
from sw2.engine.callbacks import Callback
from sw2.engine.context import Context
from sw2.engine.predict import predict
from sw2.errors import UserError
from sw2.spec import Spec
from sw2.tasks import Task

DATA_FIELDS = ("data", "task", "target", "inputs", "text")  # what the prepared data depends on


@dataclass
class Searchable:
    """A spec's data as a search may use it: the encoded train and val splits, no test split; `whole`, for a
    task that does not learn from examples, its prepared data with the test split emptied."""

    train: TensorSet
    val: TensorSet
    encoder: Encoder
    whole: Any = None


def without_test(data: Any) -> Any:
    """The task's prepared data with no test examples left in it (a copy; the original is untouched)."""
    held = copy.copy(data)
    for name in ("test", "raw_test"):
        part = getattr(data, name, None)
        if hasattr(part, "take") and not isinstance(getattr(type(data), name, None), property):  # a property: of test
            setattr(held, name, part.take(np.arange(0)))
    return held


class Datasets:
    """Prepared data per distinct data settings (a search over text.vocab_size encodes the text again)."""

    def __init__(self, task: Task, root: Path, by_examples: bool = True) -> None:
        self.task, self.root, self.by_examples = task, root, by_examples
        self.cache: dict[str, Searchable] = {}

    def get(self, spec: Spec) -> Searchable:
        key = json.dumps(spec.model_dump(mode="json", include=set(DATA_FIELDS)), sort_keys=True)
        if key not in self.cache:
            data = self.task.prepare(spec, self.root)
            whole = None if self.by_examples else without_test(data)
            self.cache[key] = Searchable(getattr(data, "train", None), data.val, data.encoder, whole)  # type: ignore[arg-type]
        return self.cache[key]


class Pruning(Callback):
    """Report the val metric to the trial at each tenth of its training (step 1 at 10% ... 10 at the end: at
    the first epoch end past it), and stop training where the pruner says so. Trials are compared at equal
    shares of their own schedules, not at equal epochs: a 20-epoch trial at epoch 5 has decayed its lr far
    more than an 80-epoch one, and would prune it unfairly."""

    STEPS = 10

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial, self.reported = trial, 0

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        if "val_metric" not in row:
            return
        reached = min(self.STEPS, int(ctx.progress * self.STEPS + 1e-9))
        if reached <= self.reported:
            return
        for step in range(self.reported + 1, reached + 1):
            self.trial.report(row["val_metric"], step)
        self.reported = reached
        if self.trial.should_prune():
            ctx.stop = "pruned"


def fit_and_predict(
    spec: Spec, data: Any, train: TensorSet, val: TensorSet, task: Task, callbacks: list[Callback] | None = None
) -> tuple[FitResult, torch.Tensor | None]:
    """`spec`'s model (the task's trainable on `data`'s encoder) trained on `train` and its outputs on `val`
    (with the spec's test-time augmentation); None where a callback stopped it as pruned. What a trial and the
    leaders' cross-validation train."""
    trainable = task.trainable(spec, data, train=train, val=val)
    result = fit(trainable, spec, verbose=False, callbacks=callbacks)
    if result.stopped == "pruned":
        return result, None
    with torch.no_grad():
        return result, predict(result.model, val.inputs, tta=spec.augment.tta)


def run_trial(trial: optuna.Trial, spec: Spec, data: Searchable, task: Task) -> float:
    """Train `spec` (the search point applied) on `data`; the val metric of the trained model (with the spec's
    test-time augmentation), or `optuna.TrialPruned` where the pruner stopped it."""
    t0 = time.perf_counter()
    if data.whole is not None:  # judged by its own evaluate
        whole = copy.copy(data.whole)  # what a trial's trainable keeps on it (its grids) goes with the trial
        result = fit(task.trainable(spec, whole), spec, verbose=False, callbacks=[Pruning(trial)])
        rows = [r for r in result.history if r.get("epoch") == result.best_epoch] or result.history[-1:]
        out = None if result.stopped == "pruned" else rows[-1]  # the epoch whose weights the run kept
    else:
        result, out = fit_and_predict(spec, data, data.train, data.val, task, [Pruning(trial)])
    trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
    trial.set_user_attr("epochs", round(result.epochs_done, 2))
    trial.set_user_attr("worker", os.getpid())
    if out is None:
        raise optuna.TrialPruned(f"stopped after epoch {len(result.history)}")
    if isinstance(out, dict):
        if "val_metric" not in out:
            raise UserError(f"sw2 tune: task {task.name}'s evaluate gives no val_metric to search by")
        if isinstance(out.get("val_loss"), float):
            trial.set_user_attr("val_loss", out["val_loss"])  # breaks ties of the metric
        return float(out["val_metric"])
    trial.set_user_attr("val_loss", task.loss(out, data.val.target).item())  # breaks ties of the metric
    return task.score(out, data.val.target)
