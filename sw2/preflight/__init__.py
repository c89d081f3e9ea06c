"""The pre-flight: the data doctor and the recipe checks, each a PASS / WARN / FAIL verdict."""

from __future__ import annotations

from sw2.data.dataset import Prepared
from sw2.preflight.data_checks import data_verdicts
from sw2.preflight.gradients import gradient_health
from sw2.preflight.lr_finder import LRSweep, sweep
from sw2.preflight.recipe import recipe_verdicts
from sw2.preflight.verdict import Verdict
from sw2.spec import Spec
from sw2.tasks import Task


def resolve_lr(spec: Spec, data: Prepared, task: Task) -> tuple[Spec, LRSweep | None]:
    """The spec with `lr: auto` replaced by the lr finder's suggestion (and the sweep), else unchanged."""
    if spec.train.lr != "auto":
        return spec, None
    found = sweep(spec, data, task)
    return spec.model_copy(update={"train": spec.train.model_copy(update={"lr": found.suggestion})}), found


def preflight(spec: Spec, data: Prepared, task: Task, found: LRSweep | None = None) -> list[Verdict]:
    """Every check's verdict; `found` is the lr sweep when the spec asked for `lr: auto`."""
    lr = []
    if found is not None and len(found.lrs) <= 2:
        msg = f"the lr sweep diverged at once, so lr: auto fell back to {found.suggestion:.0e}; set train.lr by hand"
        lr = [Verdict("learning rate", "WARN", msg)]
    elif found is not None:
        span = f"{len(found.lrs)}-step sweep from {found.lrs[0]:.0e} to {found.lrs[-1]:.0e}"
        lr = [Verdict("learning rate", "PASS", f"lr: auto -> {found.suggestion:.3g} (valley of a {span})")]
    return [*data_verdicts(data), *lr, *recipe_verdicts(spec, data, task), *gradient_health(spec, data, task)]


__all__ = ["LRSweep", "Verdict", "preflight", "resolve_lr"]
