"""A plug-in for the two-worker tune test: each worker process's first trial waits until a trial of another
process is under way in the same study, so that every worker is seen to run trials whatever the machine's
speed (without it, a fast first worker could finish the whole study before a second, still importing torch,
takes a trial).

With SW2_PLUGINS=tune_rendezvous, every sw2 process (the CLI's and each spawned worker, which load the
plug-ins with the registries) marks each trial it starts with its pid (user attr `started_by`); the first
trial of each process then polls the study until trials of $SW2_RENDEZVOUS (default 2) processes have
started, for at most $SW2_RENDEZVOUS_S seconds (default 300: a worker that never comes is an error of the
test, not a slow machine).
"""

from __future__ import annotations

import os
import time
from typing import Any

import optuna

from sw2.tuning import study

_run_trial = study.run_trial
_waited: list[bool] = []


def _processes(trial: optuna.Trial) -> set[Any]:
    trials = trial.study.get_trials(deepcopy=False)
    return {t.user_attrs["started_by"] for t in trials if "started_by" in t.user_attrs}


def run_trial(trial: optuna.Trial, *args: Any) -> float:
    trial.set_user_attr("started_by", os.getpid())
    if not _waited:
        _waited.append(True)
        want, give_up = int(os.environ.get("SW2_RENDEZVOUS", "2")), float(os.environ.get("SW2_RENDEZVOUS_S", "300"))
        start = time.monotonic()
        while len(_processes(trial)) < want:
            if time.monotonic() - start > give_up:
                raise RuntimeError(f"tune_rendezvous: {want} worker processes never ran trials together")
            time.sleep(0.05)
    return _run_trial(trial, *args)


study.run_trial = run_trial
