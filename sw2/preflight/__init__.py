"""The pre-flight: the data doctor and the recipe checks, each a PASS / WARN / FAIL verdict."""

from __future__ import annotations

import time

from sw2 import log
from sw2.errors import UserError
from sw2.models import MODELS, choose
from sw2.preflight.gradients import gradient_health
from sw2.preflight.lr_finder import LRSweep, sweep
from sw2.preflight.recipe import Data, recipe_verdicts
from sw2.preflight.speed import speed
from sw2.preflight.verdict import Verdict
from sw2.spec import Spec
from sw2.tasks import Task


def resolve_lr(spec: Spec, data: Data, task: Task) -> tuple[Spec, LRSweep | None]:
    """The spec with `lr: auto` replaced by the lr finder's suggestion (and the sweep), else unchanged."""
    if spec.train.lr != "auto":
        return spec, None
    found = sweep(spec, data, task)
    return spec.model_copy(update={"train": spec.train.model_copy(update={"lr": found.suggestion})}), found


def preflight(spec: Spec, data: Data, task: Task, found: LRSweep | None = None) -> list[Verdict]:
    """Every check's verdict; `found` is the lr sweep when the spec asked for `lr: auto`."""
    name = choose(spec.model, data.encoder, len(data.train))[0]
    if MODELS.get(name).direct:  # fitted by its own solver: the checks of a training loop do not apply
        msg = (f"model {name} is fitted directly by its own solver, its choices made on val; the training-loop "
               "checks (loss at init, overfit one batch, inputs matter, gradients, speed) do not apply")  # fmt: skip
        return [*task.data_verdicts(data), Verdict("recipe", "PASS", msg)]
    first = speed(spec, data, task)  # first: the checks after it train with the threads it chose
    lr = []
    if found is not None and len(found.lrs) <= 2:
        msg = f"the lr sweep diverged at once, so lr: auto fell back to {found.suggestion:.0e}; set train.lr by hand"
        lr = [Verdict("learning rate", "WARN", msg)]
    elif found is not None:
        span = f"{len(found.lrs)}-step sweep from {found.lrs[0]:.0e} to {found.lrs[-1]:.0e}"
        lr = [Verdict("learning rate", "PASS", f"lr: auto -> {found.suggestion:.3g} (valley of a {span})")]
    return [
        first,
        *task.data_verdicts(data),
        *lr,
        *recipe_verdicts(spec, data, task),
        *gradient_health(spec, data, task),
    ]


def run_preflight(
    spec: Spec, data: Data, task: Task, found: LRSweep | None, force: bool
) -> tuple[list[Verdict], float]:
    """The verdicts (each logged) and the seconds they took; a FAIL stops unless `force`."""
    t0 = time.perf_counter()
    verdicts = preflight(spec, data, task, found)
    seconds = time.perf_counter() - t0
    for v in verdicts:
        log.info(v.line())
    log.info(f"sw2: pre-flight took {seconds:.1f} s")
    failed = [v for v in verdicts if v.status == "FAIL"]
    if failed and not force:
        v = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise UserError(f"pre-flight FAIL: {v.check}: {v.message}{more}; fix it, or train with --force (force=True)")
    return verdicts, seconds


__all__ = ["LRSweep", "Verdict", "preflight", "resolve_lr", "run_preflight"]
