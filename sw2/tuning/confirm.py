"""Confirming the search's leaders by cross-validation before one is trained as the result.

On a small val split the best val figure of many trials is partly luck (the winner's curse): on Rotten
Tomatoes' 1,275 val reviews the top trial of 22 led the spec's own point by a point on val and trailed it by
1.4 on test. So the leading trials by val, and the spec's own point (trial 0), are trained again on folds of
train + val pooled, each scored on the rows its training left out; the best mean over every pooled row wins.
The test split stays unread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from sw2 import log
from sw2.spec import Distribution, Spec
from sw2.tasks import Task
from sw2.tuning.results import ranked
from sw2.tuning.space import apply, decoded
from sw2.tuning.trial import Datasets, fit_and_predict

FOLDS = 2  # every pooled row is scored once, each fold trains on half: affordable beside the search
RESERVE = 0.25  # the share of a --time budget kept for confirming


@dataclass
class Confirmed:
    trial: int
    val: float
    folds: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.folds))


def leaders(study: optuna.Study, most: int) -> list[FrozenTrial]:
    """The `most` finished trials of the highest val metric (ties: the lower val loss), and trial 0 (the spec's
    own point) where it finished."""
    done = ranked(study)
    chosen = done[:most]
    own = [t for t in done if t.number == 0 and "fixed_params" in t.system_attrs and t not in chosen]
    return chosen + own


def cross_validate(spec: Spec, datasets: Datasets, task: Task, folds: int = FOLDS, seed: int = 0) -> list[float]:
    """The spec trained on all but one fold of train + val, scored on that fold, for each fold."""
    data = datasets.get(spec)
    pool = data.train.join(data.val)
    order = np.random.default_rng(seed).permutation(len(pool))
    scores = []
    for held in np.array_split(order, folds):
        rest = np.setdiff1d(order, held)
        train, val = pool.take(rest), pool.take(np.sort(held))
        _, out = fit_and_predict(spec, data, train, val, task)
        scores.append(float(task.score(out, val.target)))
    return scores


def confirm(
    study: optuna.Study,
    spec: Spec,
    space: dict[str, Distribution],
    datasets: Datasets,
    task: Task,
    most: int,
    deadline: float | None,
) -> tuple[FrozenTrial, list[Confirmed]]:
    """The trial to train as the result: of the leaders, the best mean over the folds, as many leaders as the
    deadline leaves time for (each costs about its trial's seconds); the best by val where fewer than two fit."""
    candidates = leaders(study, most)
    best_by_val = candidates[0]
    fits, spent = [], 0.0
    for t in candidates:
        cost = 1.2 * t.user_attrs.get("seconds", 0.0)  # FOLDS trainings on 1/FOLDS of the pool each, and scoring
        if deadline is None or time.time() + spent + cost <= deadline:
            fits.append(t)
            spent += cost
    if len(fits) < 2:
        if len(candidates) > 1:
            log.info("sw2 tune: no time left to confirm the leaders by cross-validation; the best by val wins")
        return best_by_val, []
    confirmed = []
    for t in fits:
        folds = cross_validate(apply(spec, decoded(t.params, space)), datasets, task)
        confirmed.append(Confirmed(t.number, float(t.value), folds))
        log.info(f"sw2 tune: trial {t.number}: {FOLDS}-fold mean {confirmed[-1].mean:.4f} on train + val")
    winner = max(confirmed, key=lambda c: (c.mean, c.val))
    return next(t for t in fits if t.number == winner.trial), confirmed
