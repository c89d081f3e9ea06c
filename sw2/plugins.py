"""Every plug-in point of sw2, in one light module: the registries and where their built-ins live.

The spec (`sw2.spec`) reads its choices (model.name, data.source, train.optimizer, train.schedule) from
these registries, so a plug-in that registers itself is at once a valid choice, refused with a "did you
mean" when misspelt, and listed in the JSON schema. Importing this module imports no plug-in: each
registry imports its built-in modules (every module of a package) when a name is first needed, so
`import sw2.spec` stays light while validating a spec loads what it names.

A new plug-in point is a registry here plus a field annotated with `sw2.choices.OneOf(REGISTRY)` in the
spec (or `Options(REGISTRY)` when each plug-in declares its own options, as models do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sw2.registry import Registry

if TYPE_CHECKING:
    from sw2.data.sources import Source
    from sw2.engine.optimizers import OptimizerFactory
    from sw2.engine.schedules import Schedule
    from sw2.runtime import Backend
    from sw2.tasks.base import Task

# a model class (sw2.models.base.Model) with its spec options (`options`) and `configure`; one file each
MODELS: Registry[Any] = Registry("model", "sw2.models")
SOURCES: Registry[Source] = Registry("data source", "sw2.data.sources")
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer", "sw2.engine.optimizers")
SCHEDULES: Registry[Schedule] = Registry("schedule", "sw2.engine.schedules")
# a task: what differs between classify, regress, generate_text, ... (sw2.tasks.base.Task); one file each
TASKS: Registry[Task] = Registry("task", "sw2.tasks")
# how a loaded bundle runs its network (torch eager, ONNX Runtime, ...): a factory bundle -> Runner; one file each
BACKENDS: Registry[Backend] = Registry("backend", "sw2.runtime")
