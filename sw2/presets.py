"""Presets: one word that trades training time for quality, as AutoGluon's presets do, within `--time` when
given (`sw2 train SPEC --preset best --time 10m`, or `preset:` in the spec).

    fast      the spec as it is: one model, one training (with --time: that is its time budget)
    balanced  a search of the spec's hyper-parameters (sw2 tune: 60% of the time, or 12 trials), then the
              best spec trained
    best      a longer search (50% of the time, or 24 trials), then the best spec trained with 3 seeds
              (each within a third of the time left) and the three averaged (sw2 ensemble)

The search and the members are kept beside the bundle (OUT-search/, OUT-members/); the bundle at OUT is what
the preset chose, with the search in its report.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sw2 import log
from sw2.api import resolve_spec, train
from sw2.bundle import Bundle, write_atomic
from sw2.ensembles import combine
from sw2.outputs import bundle_out, guard_out
from sw2.spec import Spec


@dataclass(frozen=True)
class Preset:
    search: float  # share of --time spent searching (0: no search)
    trials: int  # finished trials of the search without --time
    members: int  # seeds of the best spec averaged


PRESETS = {"fast": Preset(0.0, 0, 1), "balanced": Preset(0.6, 12, 1), "best": Preset(0.5, 24, 3)}


def _with_budget(spec: Spec, seconds: float | None, seed: int | None = None) -> Spec:
    train_spec = spec.train.model_copy(
        update={k: v for k, v in (("time_budget", seconds), ("seed", seed)) if v is not None}
    )
    return spec.model_copy(update={"train": train_spec, "preset": None})


def train_preset(
    spec: str | Path | Spec | dict[str, Any],
    preset: str | None = None,
    out: str | Path | None = None,
    *,
    seconds: float | None = None,
    root: str | Path | None = None,
    verbose: bool = False,
    check: bool = True,
) -> Bundle:
    """Train `spec` as `preset` (default: the spec's `preset:`, else fast) says, within `seconds` if given."""
    parsed, base = resolve_spec(spec, root)
    name = preset or parsed.preset or "fast"
    p = PRESETS[name]
    target = bundle_out(parsed, out)
    guard_out(target, parsed, base)
    start = time.time()
    if not p.search:
        return train(_with_budget(parsed, seconds), target, root=base, verbose=verbose, check=check)
    from sw2.tuning import tune  # Optuna: the tune extra

    search_out = target.with_name(f"{target.name}-search")
    if (search_out / "tune.json").is_file():  # an earlier preset's search: this run searches afresh
        shutil.rmtree(search_out)
    how = f"for {p.search * seconds:.0f} s" if seconds else f"{p.trials} trials"
    log.info(f"sw2: preset {name}: searching the spec's hyper-parameters, {how}")
    found = tune(
        _with_budget(parsed, None), search_out, seconds=p.search * seconds if seconds else None,
        trials=None if seconds else p.trials, root=base, verbose=verbose,
    )  # fmt: skip
    if p.members == 1:
        copy = lambda folder: shutil.copytree(found.bundle.path, folder, dirs_exist_ok=True)  # noqa: E731
        return Bundle(write_atomic(target, copy))
    left = None if seconds is None else max(1.0, seconds - (time.time() - start))
    each = None if left is None else 0.9 * left / p.members  # room for scoring and the ensemble
    members_out = target.with_name(f"{target.name}-members")
    members = [found.bundle]
    for seed in range(1, p.members):
        member = _with_budget(found.best_spec, each, seed=found.best_spec.train.seed + seed)
        members.append(train(member, members_out / f"seed{seed}", root=base, verbose=verbose, check=False))
    log.info(f"sw2: preset {name}: averaging {p.members} trainings of the best spec")
    searched = {f.name: f for f in found.bundle.path.glob("tune_*")}
    return Bundle(combine(members, target, found.best_spec, base, attach=searched))
