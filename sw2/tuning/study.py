"""The study: Optuna's TPE sampler (multivariate, a constant liar where trials run side by side) over the
search space, a pruner on each epoch's val metric, trials until `--trials` or the `--time` budget, in one
process or several sharing one storage.

Storage: Optuna's journal file (OUT/study.journal) by default, which an interrupted search continues with
`--resume`; a database URL (PostgreSQL; Optuna advises against SQLite for parallel work) for workers that
share a study across processes or machines: a `sw2 tune` given the same URL and spec joins the study. A
trial cut short (Ctrl-C, SIGKILL) is tried again, with the same point, by the run that resumes the study.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryFailedTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from sw2 import log
from sw2.errors import UserError
from sw2.spec import Choice, Distribution, IntRange, Spec, distribution, parse_spec
from sw2.tasks import TASKS
from sw2.tuning.space import apply, scalar, suggest
from sw2.tuning.trial import Datasets, Pruning, Searchable, run_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)  # sw2 reports trials itself (`_announce`), through sw2.log
JOURNAL = "study.journal"
PRUNERS = ("median", "hyperband", "none")
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class Options:
    trials: int | None = None  # finished trials (complete or pruned) the study holds at the end; None: until --time
    seconds: float | None = None  # wall budget of this run's search
    workers: int = 1  # processes searching side by side
    storage: str | None = None  # a database URL; None: OUT/study.journal
    resume: bool = False
    pruner: str = "median"
    confirm: int = 3  # leaders by val cross-validated on train + val before one is trained (0: the best by val)
    seed: int = 0

    def check(self) -> None:
        if self.trials is not None and self.trials < 1:
            raise UserError(f"--trials: {self.trials}; give at least 1")
        if self.seconds is not None and self.seconds <= 0:
            raise UserError("--time: give a positive duration (e.g. 20m, 90s, 1h)")
        if self.confirm < 0:
            raise UserError(f"--confirm: {self.confirm}; give 0 (the best by val wins) or more")
        if self.workers < 1:
            raise UserError(f"--workers: {self.workers}; give at least 1")
        if self.pruner not in PRUNERS:
            raise UserError(f"--pruner: '{self.pruner}'; use one of {', '.join(PRUNERS)}")
        if self.storage is not None and "://" not in self.storage:
            raise UserError(f"--storage: '{self.storage}' is not a database URL (postgresql://user@host/db)")


@dataclass
class Search:
    """What every worker process needs to run trials: plain data, so it crosses a process boundary."""

    spec: dict[str, Any]
    root: str
    out: str
    options: Options
    deadline: float | None  # time.time() at which no trial may still run
    threads: int | None  # per worker, where several share the cores
    log_trials: bool = True
    space: dict[str, Any] = field(default_factory=dict)
    by_examples: bool = True  # the task learns a target from examples (else its trainable's evaluate scores)


def storage_for(options: Options, out: Path) -> optuna.storages.BaseStorage:
    if options.storage is None:
        return JournalStorage(JournalFileBackend(str(out / JOURNAL)))
    try:
        return RDBStorage(
            options.storage,
            heartbeat_interval=20,
            grace_period=60,
            failed_trial_callback=RetryFailedTrialCallback(max_retry=1),
        )
    except Exception as err:  # sqlalchemy's errors: a bad URL, no server, no driver
        first = str(err).strip().splitlines()[0]
        raise UserError(f"--storage: cannot open {options.storage.split('@')[-1]} ({first})") from None


def _sampler(options: Options) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(multivariate=True, seed=options.seed, constant_liar=True)


def _pruner(options: Options) -> optuna.pruners.BasePruner:
    if options.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2, max_resource=Pruning.STEPS, reduction_factor=3)
    if options.pruner == "median":  # from 30% of a trial's training, once 5 trials have finished
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    return optuna.pruners.NopPruner()


def open_study(spec: Spec, options: Options, out: Path) -> optuna.Study:
    """The study named after the spec: created, or continued (--resume, or a shared database), refused where
    it was started from another spec or an existing journal would be continued unasked."""
    storage = storage_for(options, out)
    exists = spec.name in optuna.study.get_all_study_names(storage)
    if options.storage is None and exists and not options.resume:
        raise UserError(
            f"{out}: holds a search of spec '{spec.name}' already; add --resume to continue it, or give another --out"
        )
    if options.resume and not exists:
        raise UserError(
            f"--resume: no search of spec '{spec.name}' in {options.storage or out / JOURNAL}; drop --resume"
        )
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=_sampler(options),
        pruner=_pruner(options),
        direction="maximize",
        load_if_exists=True,
    )
    mine = json.dumps(spec.model_dump(mode="json"), sort_keys=True)
    if "spec" not in study.user_attrs:
        study.set_user_attr("spec", mine)
    elif study.user_attrs["spec"] != mine:
        raise UserError(
            f"{options.storage or out / JOURNAL}: its search '{spec.name}' was started from another spec; give "
            f"that spec, or another --out (or rename the spec's name:)"
        )
    return study


def start_from_spec(study: optuna.Study, spec: Spec, space: dict[str, Distribution]) -> None:
    """A new study's first trial is the spec's own point (where its values lie in the space): the search
    starts from what the user has, and the best it returns is at least as good on val."""
    if study.trials:
        return
    raw = spec.model_dump(mode="json")
    point = {}
    for path, d in space.items():
        value: Any = raw
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(d, Choice):
            if value in d.choice:
                point[path] = value if all(scalar(c) for c in d.choice) else json.dumps(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            low, high = next(iter(d.model_dump().values()))
            whole = isinstance(d, IntRange)
            if low <= value <= high and (not whole or float(value).is_integer()):
                point[path] = int(value) if whole else value
    if point:
        study.enqueue_trial(point)


def retry_interrupted(study: optuna.Study) -> int:
    """Trials of an earlier run cut short (Ctrl-C: failed and marked; SIGKILL: still 'running' in a journal)
    are failed and their points queued again (recorded in the study's `retried`). Only for a study no other
    process is running."""
    retried = set(study.user_attrs.get("retried", []))
    cut = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number not in retried
        and (t.state == TrialState.RUNNING or (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")))
    ]
    for t in cut:
        if t.state == TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    study.set_user_attr("retried", sorted(retried | {t.number for t in cut}))
    return len(cut)


def _trial_spec(
    trial: optuna.Trial, spec: Spec, space: dict[str, Distribution], search: Search, datasets: Datasets
) -> tuple[Spec, Searchable]:
    """The spec at the trial's search point, within the search's deadline and threads, and its data."""
    trial_spec = apply(spec, suggest(trial, space))
    train = trial_spec.train.model_copy()
    if search.deadline is not None:
        left = search.deadline - time.time()
        if left < 1:
            trial.study.stop()
            raise optuna.TrialPruned("the search's time is spent")
        train.time_budget = min(train.time_budget or left, left)
    if search.threads is not None:
        train.threads = search.threads
    trial_spec = trial_spec.model_copy(update={"train": train})
    return trial_spec, datasets.get(trial_spec)


def _objective(search: Search, space: dict[str, Distribution], datasets: Datasets) -> Any:
    spec = parse_spec(search.spec)
    task = TASKS.get(spec.task)

    def objective(trial: optuna.Trial) -> float:
        try:
            return run_trial(trial, *_trial_spec(trial, spec, space, search, datasets), task)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except UserError as err:
            trial.set_user_attr("error", str(err))
            raise

    return objective


def _announce(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
    """A line per finished trial (the library reports through sw2.log; the CLI shows it)."""
    seconds = t.user_attrs.get("seconds", 0)
    if t.state == TrialState.COMPLETE:
        best = " (best so far)" if t.number == study.best_trial.number else ""
        log.info(f"sw2 tune: trial {t.number}: val {t.value:.4f}{best}, {seconds:.0f} s")
    elif t.state == TrialState.PRUNED:
        log.info(f"sw2 tune: trial {t.number}: pruned after epoch {t.last_step or 0}, {seconds:.0f} s")
    elif t.state == TrialState.FAIL:
        log.info(f"sw2 tune: trial {t.number}: failed ({t.user_attrs.get('error', 'see the log')})")


def search_trials(search: Search) -> None:
    """Run trials of the study until its trials are done or the deadline passes (one worker's loop)."""
    spec = parse_spec(search.spec)
    options, out = search.options, Path(search.out)
    study = optuna.load_study(
        study_name=spec.name, storage=storage_for(options, out), sampler=_sampler(options), pruner=_pruner(options)
    )
    space = {path: distribution(path, d) for path, d in search.space.items()}
    datasets = Datasets(TASKS.get(spec.task), Path(search.root), search.by_examples)
    callbacks: list[Any] = [_announce] if search.log_trials else []
    if options.trials is not None:
        callbacks.append(MaxTrialsCallback(options.trials, states=DONE))
    if options.trials is not None and len(study.get_trials(deepcopy=False, states=DONE)) >= options.trials:
        return
    timeout = None if search.deadline is None else max(0.0, search.deadline - time.time())
    study.optimize(_objective(search, space, datasets), timeout=timeout, callbacks=callbacks, catch=(UserError,))


def _worker(search: Search) -> None:
    try:
        search_trials(search)
    except KeyboardInterrupt:
        pass


def run_search(search: Search) -> None:
    """`search.options.workers` processes searching one study (this one among them)."""
    workers = search.options.workers
    if workers == 1:
        search_trials(search)
        return
    ctx = multiprocessing.get_context("spawn")
    others = [ctx.Process(target=_worker, args=(search,), daemon=True) for _ in range(workers - 1)]
    for p in others:
        p.start()
    try:
        search_trials(search)
    finally:
        for p in others:
            p.join()


def cores_per_worker(workers: int) -> int | None:
    """Threads each of several workers trains with, so that together they fill the cores once."""
    return None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
