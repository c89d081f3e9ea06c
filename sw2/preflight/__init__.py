"""The pre-flight: the data doctor and the recipe checks, each a PASS / WARN / FAIL verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sw2 import log
from sw2.engine import threads
from sw2.engine.trainable import SUPERVISED
from sw2.errors import UserError
from sw2.preflight.gradients import gradient_health
from sw2.preflight.lr_finder import LRSweep, sweep
from sw2.preflight.recipe import Data, inputs_matter_verdict, loss_at_init, overfit_one_batch
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


@dataclass(frozen=True)
class Check:
    """A pre-flight check: its name, the capabilities of the trainable it needs (sw2.engine.trainable), and
    what it runs. Where the trainable lacks one, the verdict is SKIP with the reason; the check never runs."""

    name: str
    needs: frozenset[str]
    run: Callable[[], list[Verdict]]

    def verdicts(self, offers: frozenset[str], task: str) -> list[Verdict]:
        missing = sorted(self.needs - offers)
        if missing:
            why = f"needs {' and '.join(missing)}, which a {task} trainable does not offer"
            return [Verdict(self.name, "SKIP", why)]
        return self.run()


def preflight(spec: Spec, data: Data, task: Task, found: LRSweep | None = None) -> list[Verdict]:
    """Every check's verdict; `found` is the lr sweep when the spec asked for `lr: auto`."""
    probe = task.trainable(spec, data)  # what it offers; untrained, it is the loss-at-init check's model
    if probe.direct is not None:  # fitted by its own solver: the checks of a training loop do not apply
        name = probe.built["model"][0]
        msg = (f"model {name} is fitted directly by its own solver, its choices made on val; the training-loop "
               "checks (loss at init, overfit one batch, inputs matter, gradients, speed) do not apply")  # fmt: skip
        return [*task.data_verdicts(data), Verdict("recipe", "PASS", msg)]
    examples = probe.has(SUPERVISED)
    lr = []
    if found is not None and len(found.lrs) <= 2:
        msg = f"the lr sweep diverged at once, so lr: auto fell back to {found.suggestion:.0e}; set train.lr by hand"
        lr = [Verdict("learning rate", "WARN", msg)]
    elif found is not None:
        span = f"{len(found.lrs)}-step sweep from {found.lrs[0]:.0e} to {found.lrs[-1]:.0e}"
        lr = [Verdict("learning rate", "PASS", f"lr: auto -> {found.suggestion:.3g} (valley of a {span})")]
    supervised = frozenset({SUPERVISED})
    checks = [  # speed first: the checks after it train with the threads it chose
        Check("speed", supervised, lambda: [speed(spec, data, task)]),
        Check("data", frozenset(), lambda: task.data_verdicts(data)),
        Check("learning rate", frozenset(), lambda: lr),
        Check("loss at init", supervised, lambda: [loss_at_init(spec, data, task, probe.model)]),
        Check("overfit one batch", supervised, lambda: [overfit_one_batch(spec, data, task)]),
        Check("input-independent baseline", supervised, lambda: [inputs_matter_verdict(spec, data, task)]),
        Check("gradient health", frozenset(), lambda: gradient_health(spec, data, task, examples)),
        *task.preflight(spec, data),
    ]
    verdicts = checks[0].verdicts(probe.offers, task.name)
    with threads.at_last_choice():  # the checks after it run their own steps too, not only `fit`
        return verdicts + [v for check in checks[1:] for v in check.verdicts(probe.offers, task.name)]


def run_preflight(
    spec: Spec, data: Data, task: Task, found: LRSweep | None, force: bool
) -> tuple[list[Verdict], float]:
    """The verdicts (each logged) and the seconds they took; a FAIL stops unless `force`."""
    t0 = time.perf_counter()
    verdicts = preflight(spec, data, task, found)
    seconds = time.perf_counter() - t0
    for v in verdicts:
        log.event("preflight", v.line(), **v.to_json())
    log.info(f"sw2: pre-flight took {seconds:.1f} s")
    failed = [v for v in verdicts if v.status == "FAIL"]
    if failed and not force:
        v = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise UserError(f"pre-flight FAIL: {v.check}: {v.message}{more}; fix it, or train with --force (force=True)")
    return verdicts, seconds


__all__ = ["Check", "LRSweep", "Verdict", "preflight", "resolve_lr", "run_preflight"]
