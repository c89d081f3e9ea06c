"""Likely label errors (`sw2 doctor`): out-of-fold probabilities from k quick models, then confident
learning (cleanlab) to say which examples are probably mislabeled and what their label should be.

Each example of train + val is predicted by a model that never saw it (stratified k-fold, the spec's
model and optimizer). cleanlab estimates how many labels are wrong from the per-class confident joint
(`flagged`) and ranks every example by its label quality: the probability the fold model gives to the
given label (self-confidence), lowest first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sw2.data.dataset import Prepared, TensorSet
from sw2.data.examples import Examples
from sw2.data.split import fold_ids
from sw2.engine import fit, predict
from sw2.errors import UserError
from sw2.models import initialised
from sw2.spec import Spec
from sw2.tasks import Task


@dataclass
class LabelIssues:
    """Every example of the pool ranked by label quality (lowest first), with cleanlab's verdict."""

    table: pd.DataFrame  # id, given, suggested, p_given, p_suggested, quality, flagged; ranked
    examples: Examples  # the pool's raw examples, in the order of `position` in the table
    summary: dict[str, Any]


def rank_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label quality per example, cleanlab's flagged mask) for integer labels and held-out probabilities."""
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise UserError("label-error ranking needs cleanlab: pip install 'sw2[data]'") from None
    if len(np.unique(labels)) < 2:
        raise UserError("ranking label errors needs examples of at least two classes")
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    flagged = find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    return quality, flagged


def issue_table(ids: np.ndarray, labels: np.ndarray, probs: np.ndarray, classes: list[Any]) -> pd.DataFrame:
    """One row per example, most suspicious first: given and suggested label with their probabilities."""
    quality, flagged = rank_issues(labels, probs)
    suggested = probs.argmax(1)
    names = np.asarray(classes, dtype=object)
    rows = np.arange(len(labels))
    table = pd.DataFrame(
        {
            "position": rows,
            "id": ids,
            "given": names[labels],
            "suggested": names[suggested],
            "p_given": probs[rows, labels].round(4),
            "p_suggested": probs[rows, suggested].round(4),
            "quality": quality.round(5),
            "flagged": flagged,
        }
    )
    return table.sort_values(["quality", "position"], kind="stable").reset_index(drop=True)


def out_of_fold(
    spec: Spec, data: Prepared, task: Task, pool: TensorSet, log: Callable[[str], None] = print
) -> np.ndarray:
    """Class probabilities for each example of `pool` from a model trained on the other folds."""
    doc = spec.doctor
    train_cfg = {"early_stopping": None}  # no validation set inside a fold
    if doc.epochs is not None:
        train_cfg.update(epochs=doc.epochs, time_budget=None)
    fold_spec = spec.model_copy(update={"train": spec.train.model_copy(update=train_cfg)})
    folds = fold_ids(pool.target.numpy(), doc.folds, spec.data.split.seed)
    probs = np.zeros((len(pool), len(data.encoder.classes or [])), np.float32)
    empty = pool.take(np.arange(0))
    for k in range(doc.folds):
        t0 = time.perf_counter()
        held, rest = np.flatnonzero(folds == k), np.flatnonzero(folds != k)
        train = pool.take(rest)
        _, _, model = initialised(fold_spec, data.encoder, train, task)
        model = fit(model, task, train, empty, fold_spec, verbose=False).model
        out = predict(model, pool.take(held).inputs, tta=spec.augment.tta)
        probs[held] = out.softmax(1).numpy()
        acc = float((out.argmax(1) == pool.target[held]).float().mean())
        log(
            f"doctor: fold {k + 1}/{doc.folds}: {len(rest)} trained, {len(held)} held out, "
            f"accuracy {acc:.4f} against the given labels, {time.perf_counter() - t0:.1f} s"
        )
    return probs


def label_issues(spec: Spec, data: Prepared, task: Task, log: Callable[[str], None] = print) -> LabelIssues:
    """The doctor's ranking over train + val (the test split stays untouched)."""
    if data.encoder.classes is None:
        raise UserError("sw2 doctor looks for label errors in classification data; this spec is task: regress")
    t0 = time.perf_counter()
    pool = data.train.join(data.val)
    # val examples whose class train lacks were dropped when encoding
    raw = data.raw_train.join(data.raw_val.take(np.flatnonzero(np.isin(data.raw_val.ids, data.val.ids))))
    probs = out_of_fold(spec, data, task, pool, log)
    labels = pool.target.numpy()
    table = issue_table(pool.ids, labels, probs, data.encoder.classes)
    summary = {
        "examples": len(pool),
        "folds": spec.doctor.folds,
        "out_of_fold_accuracy": round(float((probs.argmax(1) == labels).mean()), 4),
        "flagged": int(table["flagged"].sum()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return LabelIssues(table, raw, summary)
