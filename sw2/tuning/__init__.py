"""`sw2 tune`: a hyper-parameter search over a spec with Optuna, then the best spec trained as a bundle.

    space.py   the search space (the spec's `tune:` or sw2's per task / model / data), points into specs
    trial.py   one trial: train on the train split, score on val (never test), prune by epoch
    study.py   the Optuna study: sampler, pruner, storage, resume, worker processes, the time budget
    confirm.py the leaders by val (and the spec's own point) cross-validated on train + val; the best wins
    results.py the leaderboard, best spec, plots and TensorBoard hparams

The output folder (default runs/<name>-tune) holds study.journal, tune.json, leaderboard.md / .csv,
best.yaml, tune_history.png, tune_importance.png, tensorboard/ and best/ (the bundle, whose report shows
the search).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from sw2 import log
from sw2.api import resolve_spec
from sw2.api import train as train_bundle
from sw2.bundle import Bundle
from sw2.engine.trainable import SUPERVISED, nothing_held_out
from sw2.errors import UserError
from sw2.outputs import guard_out
from sw2.spec import Spec, dump_spec
from sw2.tasks import TASKS
from sw2.tuning import results
from sw2.tuning.confirm import RESERVE, Confirmed
from sw2.tuning.confirm import confirm as confirm_leaders
from sw2.tuning.space import apply, decoded, searched
from sw2.tuning.study import (
    JOURNAL,
    Options,
    Search,
    cores_per_worker,
    open_study,
    retry_interrupted,
    run_search,
    start_from_spec,
)
from sw2.tuning.trial import Datasets

MARK = "tune.json"
WRITES = (MARK, JOURNAL, f"{JOURNAL}.lock", "leaderboard.md", "leaderboard.csv", "best.yaml", "tune_history.png",
          "tune_importance.png", "tensorboard", "best", "best.checkpoint")  # fmt: skip
DEFAULT_TRIALS = 20  # where neither --trials nor --time is given


@dataclass
class Tuned:
    study: optuna.Study
    leaderboard: list[dict[str, Any]]
    best_spec: Spec
    bundle: Bundle
    out: Path
    confirmed: list[Confirmed]  # the leaders' cross-validation (empty: the best by val won unconfirmed)
    trial: int  # the trial trained into the bundle


@log.speaks
def tune(
    spec: str | Path | Spec | dict[str, Any],
    out: str | Path | None = None,
    *,
    trials: int | None = None,
    seconds: float | None = None,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    pruner: str = "median",
    confirm: int = 3,
    root: str | Path | None = None,
    verbose: bool = False,
) -> Tuned:
    """Search `spec`'s hyper-parameters on its val split, confirm the `confirm` best by val (and the spec's own
    point) by cross-validation on train + val, then train the winner into OUT/best."""
    options = Options(trials, seconds, workers, storage, resume, pruner, confirm)
    if trials is None and seconds is None:
        options.trials = DEFAULT_TRIALS
    options.check()
    spec, base = resolve_spec(spec, root)
    target = Path(out) if out else Path("runs") / f"{spec.name}-tune"
    guard_out(target, spec, base, marks=(MARK,), what="an sw2 tune output", checkpoint=False, writes=WRITES)
    if resume and storage is None and not (target / JOURNAL).is_file():
        raise UserError(f"--resume: {target} holds no search to continue; drop --resume to start one")
    if resume and storage is None:  # a run killed while writing leaves the journal's lock; nobody else runs it
        (target / f"{JOURNAL}.lock").unlink(missing_ok=True)
    task = TASKS.get(spec.task)
    data = task.prepare(spec, base)
    probe = spec.model_copy(update={"train": spec.train.model_copy(update={"lr": 1e-3})})  # any lr builds it
    trainable = task.trainable(probe, data)
    # a trial is scored by a model's outputs on val examples, or else by the trainable's own evaluate
    by_examples = trainable.has(SUPERVISED)
    if not by_examples and trainable.evaluate is nothing_held_out:
        raise UserError(f"sw2 tune: task {task.name}'s trainable judges no checkpoint (no evaluate); nothing to search")
    if by_examples and not len(data.val):
        raise UserError(
            "data.split.val: sw2 tune scores each trial on the val split and this spec has none; set data.split.val "
            "(e.g. 0.1)"
        )
    space = searched(spec, data)
    target.mkdir(parents=True, exist_ok=True)
    study = open_study(spec, options, target)
    (target / MARK).write_text(json.dumps({"spec": spec.name, "space": {p: d.model_dump() for p, d in space.items()}}))
    start_from_spec(study, spec, space)
    if resume and storage is None:  # a shared database's stale trials are its heartbeat's to retry
        again = retry_interrupted(study)
        log.info(f"sw2 tune: resuming '{spec.name}': {len(study.trials)} trials so far, {again} cut short run again")
    judged = (
        f"on the val split ({len(data.train)} train, {len(data.val)} val)"
        if by_examples
        else "by each trial's own judgement"
    )
    log.info(f"sw2 tune: searching {', '.join(space)} {judged}")
    end = None if seconds is None else time.time() + seconds
    confirming = confirm and by_examples  # leaders of a task without examples are not cross-validated
    deadline = end if end is None or not confirming else end - seconds * RESERVE  # the rest confirms them
    search = Search(
        spec.model_dump(mode="json"), str(base), str(target), options, deadline, cores_per_worker(workers),
        space={p: d.model_dump() for p, d in space.items()}, by_examples=by_examples,
    )  # fmt: skip
    run_search(search)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
        why = f": {errors[0]}" if errors else " (give more --time or --trials)"
        raise UserError(f"sw2 tune: no trial finished{why}")
    best_trial, confirmed = results.best_trial(study), []
    if confirm and not by_examples:
        log.info(f"sw2 tune: task {task.name} learns no target from examples, so its leaders are not "
                 "cross-validated: the best by val wins")  # fmt: skip
    elif confirm:
        best_trial, confirmed = confirm_leaders(study, spec, space, Datasets(task, base), task, confirm, end)
    return _finish(study, spec, space, base, target, best_trial, confirmed, verbose)


def _finish(
    study: optuna.Study,
    spec: Spec,
    space: dict,
    base: Path,
    out: Path,
    best_trial: optuna.trial.FrozenTrial,
    confirmed: list[Confirmed],
    verbose: bool,
) -> Tuned:
    """The leaderboard, best spec, plots and hparams, and the best spec trained into OUT/best."""
    rows = results.leaderboard(study, space, {c.trial: c.mean for c in confirmed})
    (out / "leaderboard.md").write_text(results.markdown(rows), encoding="utf-8")
    pd.DataFrame(rows).to_csv(out / "leaderboard.csv", index=False)
    best = apply(spec, decoded(best_trial.params, space))
    (out / "best.yaml").write_text(dump_spec(best), encoding="utf-8")
    written = results.plots(study, out)
    results.hparams(study, space, out / "tensorboard")
    log.info(f"sw2 tune: best trial {best_trial.number}, val {best_trial.value:.4f}; training it into {out / 'best'}")
    attach = {"tune_leaderboard.md": out / "leaderboard.md", **{p.name: p for p in written}}
    bundle = train_bundle(best, out / "best", root=base, check=False, verbose=verbose, attach=attach)
    return Tuned(study, rows, best, bundle, out, confirmed, best_trial.number)
