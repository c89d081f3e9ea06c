"""Cross-validated metrics (`sw2 train --cv K`, `sw2.train(spec, cv=K)`): on small data one test split is a
noisy figure; K models, each trained on all but one fold of train + val and scored on that fold, give each
metric's mean and spread.

The folds follow the spec's split (sw2.data.split.folds): stratified by class for classification, by whole
groups with `split.group`, expanding windows in time order with `split.by` (fold i trains on the earliest
runs of rows and scores the next). Each fold trains as the spec says, through the task's trainable, as the
doctor's folds do; where the spec stops early, a val share of the fold's training rows (carved as the split
says) is held out for it, never the scored fold. The test split stays unread. The inputs' encoding is the
one fitted on the training split, as for the final model.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sw2 import log
from sw2.data.dataset import Prepared, TensorSet
from sw2.data.examples import Examples
from sw2.data.split import Folds, carve_indices, folds
from sw2.engine import fit, predict
from sw2.errors import UserError
from sw2.spec import Spec

if TYPE_CHECKING:
    from sw2.tasks import Task


def _pool(data: Any, task: Task) -> tuple[TensorSet, Examples]:
    """train + val: encoded, and the raw rows beside them (the split's columns)."""
    if not isinstance(data, Prepared):
        raise UserError(f"--cv: task {task.name} is not cross-validated; train it without --cv")
    return data.train.join(data.val), data.raw_train.join(data.scored_val)


def plan(spec: Spec, data: Any, task: Task, k: int) -> Folds:
    """The k folds of train + val, or a one-line refusal: fewer than 2 folds, more folds than the smallest
    class (or than the rows, groups or dates) holds."""
    if k < 2:
        raise UserError(f"--cv {k}: cross-validation needs 2 or more folds (e.g. --cv 5)")
    pool, raw = _pool(data, task)
    if task.discrete:
        counts = np.bincount(pool.target.numpy())
        smallest = int(counts[counts > 0].min())
        if k > smallest:
            raise UserError(
                f"--cv {k}: the smallest class has {smallest} rows in train + val; give --cv {smallest} or fewer"
            )
    if k > len(pool):
        raise UserError(f"--cv {k}: train + val hold {len(pool)} rows; give --cv {len(pool)} or fewer")
    return folds(raw, spec.data.split, k, task.discrete)


def fold_outputs(spec: Spec, data: Prepared, task: Task, pool: TensorSet, raw: Examples, rest: np.ndarray,
                 held: np.ndarray) -> torch.Tensor:  # fmt: skip
    """The spec's model trained on `pool[rest]` (less a val share where it stops early) and its outputs on
    `pool[held]`."""
    inner = rest[:0]
    if spec.train.early_stopping is not None:
        split = spec.data.split
        v, t = carve_indices(raw.take(rest), split, [split.val or 0.1], task.discrete)
        inner, rest = rest[v], rest[t]
    trainable = task.trainable(spec, data, train=pool.take(rest), val=pool.take(inner))
    model = fit(trainable, spec, verbose=False).model
    with torch.no_grad():
        return predict(model, pool.take(held).inputs, tta=spec.augment.tta)


def _numbers(scores: dict[str, Any]) -> dict[str, float]:
    """The headline metrics of `task.evaluate`: its top-level numbers (not n, the baseline or tables)."""
    return {
        k: float(v) for k, v in scores.items() if k != "n" and isinstance(v, int | float) and not isinstance(v, bool)
    }


def cross_validate(spec: Spec, data: Prepared, task: Task, plan: Folds) -> dict[str, Any]:
    """Each fold's metrics and, per metric, the mean and standard deviation over the folds (cv.json)."""
    t0 = time.perf_counter()
    pool, raw = _pool(data, task)
    split = spec.data.split
    how = (
        f"expanding windows in order of '{split.by}'" if split.by else f"by groups of '{split.group}'"
        if split.group else "stratified" if task.discrete else "random"
    )  # fmt: skip
    rows = []
    for i, (rest, held) in enumerate(plan):
        f0 = time.perf_counter()
        out = fold_outputs(spec, data, task, pool, raw, rest, held)
        scores = _numbers(task.evaluate(out, pool.target[torch.from_numpy(held)], data.encoder))
        rows.append({"fold": i + 1, "trained": len(rest), "scored": len(held), **scores})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
        seconds = time.perf_counter() - f0
        log.info(f"cv: fold {i + 1}/{len(plan)}: {len(rest)} trained, {len(held)} scored: {shown} ({seconds:.1f} s)")
    names = [k for k in rows[0] if k not in ("fold", "trained", "scored")]
    values = {m: np.array([r[m] for r in rows]) for m in names}
    summary = {m: {"mean": round(float(v.mean()), 6), "std": round(float(v.std(ddof=1)), 6)} for m, v in values.items()}
    record = {"k": len(plan), "folds_by": how, "pool": "train + val", "metrics": summary, "folds": rows,
              "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
    return record
