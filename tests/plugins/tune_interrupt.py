"""A plug-in for the interrupted-search test: `sw2 tune` cut short at the same trial on any machine.

With SW2_PLUGINS=tune_interrupt, $SW2_TUNE_SIGNAL (INT or KILL) and $SW2_TUNE_AFTER (N), the process sends
itself that signal once, as a trial begins (its point chosen, its training not begun) while the study holds at
least N finished trials: Ctrl-C or SIGKILL in the middle of a search, where a parent polling the study and
racing to signal could land between trials or after the last one.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import optuna

from sw2.tuning import study

_run_trial = study.run_trial
_sent: list[bool] = []
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def run_trial(trial: optuna.Trial, *args: Any) -> float:
    after = os.environ.get("SW2_TUNE_AFTER")
    if after is not None and not _sent and len(trial.study.get_trials(deepcopy=False, states=FINISHED)) >= int(after):
        _sent.append(True)
        os.kill(os.getpid(), getattr(signal, f"SIG{os.environ['SW2_TUNE_SIGNAL']}"))
    return _run_trial(trial, *args)


study.run_trial = run_trial
