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

from sw2 import log as sw2_log
from sw2.data.dataset import Prepared, TensorSet
from sw2.data.examples import Examples
from sw2.data.split import fold_ids, split_indices
from sw2.engine import fit, predict
from sw2.engine.length import DEFAULT_BUDGET
from sw2.errors import UserError
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


def captions(table: pd.DataFrame) -> list[str]:
    """'given → suggested p' for each row of an issue table, as the galleries show them."""
    return [f"{g} → {s} {p:.2f}" for g, s, p in zip(table["given"], table["suggested"], table["p_suggested"])]


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
    spec: Spec, data: Prepared, task: Task, pool: TensorSet, log: Callable[[str], None] = sw2_log.info
) -> tuple[np.ndarray, int]:
    """Class probabilities for each example of `pool` from a model trained on the other folds, and the
    number of folds used: at most the size of the smallest class, so that every fold sees every class.

    Each fold trains as the spec says (or `doctor.epochs`), within `time_budget / folds` when the spec has
    a budget; with early stopping, a validation share of the fold's training part is held out for it."""
    doc, cfg, split = spec.doctor, spec.train, spec.data.split
    labels = pool.target.numpy()
    k = int(max(2, min(doc.folds, np.bincount(labels).min())))
    if k < doc.folds:
        log(f"doctor: {k} folds instead of {doc.folds}: the smallest class has only {k} examples")
    budget = cfg.time_budget or (DEFAULT_BUDGET if cfg.epochs is None and doc.epochs is None else None)
    update: dict[str, Any] = {"time_budget": budget / k if budget else None}  # a chosen length: its budget too
    if doc.epochs is not None:
        update["epochs"] = doc.epochs
    fold_spec = spec.model_copy(update={"train": cfg.model_copy(update=update)})
    folds = fold_ids(labels, k, split.seed)
    probs = np.zeros((len(pool), len(data.encoder.classes or [])), np.float32)
    for f in range(k):
        t0 = time.perf_counter()
        held, rest = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        inner_val = rest[:0]
        if cfg.early_stopping is not None:
            v, t = split_indices(labels[rest].astype(str), [split.val or 0.1], split.seed, stratify=True)
            inner_val, rest = rest[v], rest[t]
        train = pool.take(rest)
        trainable = task.trainable(fold_spec, data, train=train, val=pool.take(inner_val))
        model = fit(trainable, fold_spec, verbose=False).model
        out = predict(model, pool.take(held).inputs, tta=spec.augment.tta)
        probs[held] = out.softmax(1).numpy()
        acc = float((out.argmax(1) == pool.target[held]).float().mean())
        log(
            f"doctor: fold {f + 1}/{k}: {len(rest)} trained, {len(held)} held out, "
            f"accuracy {acc:.4f} against the given labels, {time.perf_counter() - t0:.1f} s"
        )
    return probs, k


def label_issues(spec: Spec, data: Prepared, task: Task, log: Callable[[str], None] = sw2_log.info) -> LabelIssues:
    """The doctor's ranking over train + val (the test split stays untouched)."""
    if not task.discrete:
        raise UserError(f"sw2 doctor looks for label errors in classification data; this spec is task: {task.name}")
    t0 = time.perf_counter()
    pool = data.train.join(data.val)
    raw = data.raw_train.join(data.scored_val)
    probs, folds = out_of_fold(spec, data, task, pool, log)
    labels = pool.target.numpy()
    table = issue_table(pool.ids, labels, probs, data.encoder.classes)
    summary = {
        "examples": len(pool),
        "folds": folds,
        "out_of_fold_accuracy": round(float((probs.argmax(1) == labels).mean()), 4),
        "flagged": int(table["flagged"].sum()),
        "seconds": round(time.perf_counter() - t0, 2),
        "show": spec.doctor.show,
    }
    return LabelIssues(table, raw, summary)
