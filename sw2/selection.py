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
from sw2.bundle import architecture
from sw2.data.columns import kinds_table
from sw2.data.dataset import Prepared
from sw2.engine import FitResult, fit, threads, validate
from sw2.engine.callbacks import Callback
from sw2.engine.callbacks.snapshots import Snapshots
from sw2.ensembles import from_snapshots
from sw2.outputs import checkpoint_dir
from sw2.runs import train_model
from sw2.spec import Spec
from sw2.tasks import Task
from sw2.teacher import teaching_for


@dataclass
class Fitted:
    spec: Spec  # the spec it was trained with (its model named, the recipe filled in)
    name: str
    arch: dict[str, Any]  # model.json (sw2.bundle.architecture)
    result: FitResult
    val_loss: float
    val_metric: float
    seconds: float

    def row(self) -> dict[str, Any]:
        return {"model": self.name, "val_loss": round(self.val_loss, 5), "val_metric": round(self.val_metric, 5),
                "seconds": round(self.seconds, 2)}  # fmt: skip


def fit_candidates(
    specs: list[Spec],
    data: Prepared,
    task: Task,
    out: Path,
    key: str,
    *,
    resume: bool,
    verbose: bool,
    teacher: Any,
    callbacks: list[Callback] | None = None,
) -> tuple[Fitted, list[Fitted]]:
    """Each spec's model trained (the first with the run's checkpoints, distillation, snapshots and the
    caller's `callbacks`, which `sw2.models.candidates` gives alone), and the best on val with every one
    tried."""
    tried = []
    if data.report.get("columns"):  # what each column was read as, before any training
        log.info(f"sw2: {data.report['source']}: columns\n" + "\n".join(kinds_table(data.report["columns"])))
    for i, spec in enumerate(specs):
        start = time.perf_counter()
        teaching, train_set = teaching_for(spec, teacher, data) if i == 0 and teacher else (None, None)
        if teaching is not None:  # distillation (a task that learns from examples): its training set
            trainable = task.trainable(spec, data, train=train_set, init_on=data.train, teaching=teaching)
        else:
            trainable = task.trainable(spec, data)
        arch = architecture(trainable.built)
        name, model = arch.get("name") or "+".join(trainable.built), trainable.model
        n_params = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
        log.info(f"sw2: {data.report['source']}: {task.describe(data)}; model {name} ({n_params:,} parameters)")
        if i == 0:
            snaps = [Snapshots(model, spec.train.snapshots)] if spec.train.snapshots else []
            result = train_model(
                trainable, spec, out, key, resume=resume, verbose=verbose, callbacks=snaps + (callbacks or [])
            )
            if snaps:  # the bundle's network averages the run's snapshots
                name, kwargs, result.model = from_snapshots(name, arch["kwargs"], snaps[0].saved, str(task.blend))
                arch = {"name": name, "kwargs": kwargs}
        else:
            with threads.at_last_choice():  # a direct fit (trees, L-BFGS) has no tuner of its own
                result = fit(trainable, spec, verbose=verbose)
        if i == 0 and snaps and len(data.val):  # the averaged network, not the trainable's own
            judged = dict(zip(("val_loss", "val_metric"), validate(result.model, task, data.val)))
        else:
            judged = trainable.evaluate(None)
        scores = judged.get("val_loss", math.nan), judged.get("val_metric", math.nan)
        tried.append(Fitted(spec, name, arch, result, *scores, time.perf_counter() - start))
    best = max(tried, key=lambda f: (f.val_metric, -f.val_loss)) if not math.isnan(tried[0].val_metric) else tried[0]
    if len(tried) > 1:
        scores = ", ".join(f"{f.name} {f.val_metric:.4f}" for f in tried)
        log.info(f"sw2: model auto: val {task.metric} {scores}: {best.name} kept")
        if best is not tried[0]:  # the first's checkpoint and logs are not the bundle's
            shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return best, tried
