"""What a search leaves: the leaderboard (every trial: its point, val metric, seconds, pruned or not), the
best spec as YAML, the optimisation history and parameter importances as PNG, and TensorBoard's hparams
view of the finished trials."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from sw2.spec import Distribution  # noqa: E402
from sw2.tuning.space import decoded  # noqa: E402


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/")


def leaderboard(
    study: optuna.Study, space: dict[str, Distribution], folds: dict[int, float] | None = None
) -> list[dict[str, Any]]:
    """One row per trial, finished ones first by val metric, then pruned ones by their last reported metric;
    `folds`: the cross-validated mean of the confirmed trials."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING or t.state == TrialState.WAITING:
            continue
        last = t.intermediate_values.get(t.last_step) if t.last_step is not None else None
        rows.append(
            {
                "trial": t.number,
                "state": {"COMPLETE": "done", "PRUNED": "pruned", "FAIL": "failed"}.get(t.state.name, t.state.name),
                "val": t.value if t.state == TrialState.COMPLETE else last,
                **({"cv": folds.get(t.number)} if folds else {}),
                "epochs": t.user_attrs.get("epochs"),
                "seconds": t.user_attrs.get("seconds"),
                **decoded(t.params, space),
            }
        )
    order = {"done": 0, "pruned": 1}
    return sorted(rows, key=lambda r: (order.get(r["state"], 2), -(r["val"] if r["val"] is not None else -math.inf)))


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The finished trials, the highest val metric first; among equals (a small val split ties often), the
    lowest val loss first."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: (-t.value, t.user_attrs.get("val_loss", math.inf)))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best finished trial by val (`ranked`'s first)."""
    return ranked(study)[0]


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(_shown(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plots(study: optuna.Study, out: Path) -> list[Path]:
    """tune_history.png (each finished trial's val metric and the best so far) and, from 3 finished trials,
    tune_importance.png (fANOVA importance of each parameter)."""
    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Target and region quantiles")  # few trials: importances all equal
        return _plots(study, out)


def _plots(study: optuna.Study, out: Path) -> list[Path]:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    vis = optuna.visualization.matplotlib
    wanted = [("tune_history.png", vis.plot_optimization_history, bool(done))]
    wanted.append(("tune_importance.png", vis.plot_param_importances, len(done) >= 3 and len(done[0].params) > 1))
    written = []
    for name, plot, possible in wanted:
        if not possible:
            continue
        ax = plot(study, target_name="val metric")
        ax.figure.set_size_inches(7, 4)
        ax.figure.tight_layout()
        ax.figure.savefig(out / name, dpi=100)
        plt.close(ax.figure)
        written.append(out / name)
    return written


def hparams(study: optuna.Study, space: dict[str, Distribution], folder: Path) -> None:
    """TensorBoard's hparams dashboard: one run per finished trial, its point and val metric."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            point = {
                k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in decoded(t.params, space).items()
            }
            writer.add_hparams(point, {"val_metric": t.value}, run_name=f"trial-{t.number}")
