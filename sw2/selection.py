"""Training the candidate models of a spec and keeping the best on val (`model: auto` on a table tries the
net, gradient-boosted trees and a linear model, as AutoGluon's `fit` would): each trained on the same split,
scored on the same val rows; the highest val metric wins, the lower val loss breaking a tie."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sw2 import log
from sw2.data.dataset import Prepared
from sw2.engine.callbacks.snapshots import Snapshots
from sw2.engine.loop import FitResult, fit, validate
from sw2.ensembles import from_snapshots
from sw2.models import initialised
from sw2.outputs import checkpoint_dir
from sw2.runs import train_model
from sw2.spec import Spec
from sw2.tasks import Task
from sw2.teacher import distill_step


@dataclass
class Fitted:
    spec: Spec  # the spec it was trained with (its model named, the recipe filled in)
    name: str
    kwargs: dict[str, Any]
    result: FitResult
    val_loss: float
    val_metric: float
    seconds: float

    def row(self) -> dict[str, Any]:
        return {"model": self.name, "val_loss": round(self.val_loss, 5), "val_metric": round(self.val_metric, 5),
                "seconds": round(self.seconds, 2)}  # fmt: skip


def fit_candidates(
    specs: list[Spec], data: Prepared, task: Task, out: Path, key: str, *, resume: bool, verbose: bool, teacher: Any
) -> tuple[Fitted, list[Fitted]]:
    """Each spec's model trained (the first with the run's checkpoints, distillation and snapshots, which
    `sw2.models.candidates` gives alone), and the best on val with every one tried."""
    tried = []
    for i, spec in enumerate(specs):
        start = time.perf_counter()
        name, kwargs, model = initialised(spec, data.encoder, data.train, task)
        n_params = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
        log.info(f"sw2: {data.report['source']}: {task.describe(data)}; model {name} ({n_params:,} parameters)")
        if i == 0:
            step, train_set = distill_step(spec, teacher, data, task, model)
            snaps = [Snapshots(model, spec.train.snapshots)] if spec.train.snapshots else []
            result = train_model(
                model, task, train_set, data.val, spec, out, key, resume=resume, verbose=verbose, step=step,
                callbacks=snaps,
            )  # fmt: skip
            if snaps:  # the bundle's network averages the run's snapshots
                name, kwargs, result.model = from_snapshots(name, kwargs, snaps[0].saved, str(task.blend))
        else:
            result = fit(model, task, data.train, data.val, spec, verbose=verbose)
        scores = validate(result.model, task, data.val) if len(data.val) else (math.nan, math.nan)
        tried.append(Fitted(spec, name, kwargs, result, *scores, time.perf_counter() - start))
    best = max(tried, key=lambda f: (f.val_metric, -f.val_loss)) if len(data.val) else tried[0]
    if len(tried) > 1:
        scores = ", ".join(f"{f.name} {f.val_metric:.4f}" for f in tried)
        log.info(f"sw2: model auto: val {task.metric} {scores}: {best.name} kept")
        if best is not tried[0]:  # the first's checkpoint and logs are not the bundle's
            shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return best, tried
