"""Every plug-in point of sw2, in one light module: the registries, and the built-in plug-ins they declare.

The spec (`sw2.spec`) reads its choices (model.name, data.source, train.optimizer, train.schedule, task) from
these registries, so a plug-in is at once a valid choice, refused with a "did you mean" when misspelt, and
listed in the JSON schema. Each built-in plug-in is declared (`Registry.declare`): its name, and the module
that implements and registers it, imported when the plug-in is first used, never to validate a spec (those
modules import torch). What the spec must know of a built-in model or task is declared with its name, in a
light module that the registry imports when a name is first needed: every model's options in
`sw2.model_options`, every task's metrics and checks in `sw2.task_rules`. So `import sw2.spec` and
validating a spec stay light. A plug-in of yours registers itself when its module is imported ($SW2_PLUGINS).

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

# a model class (sw2.models.base.Model) with its spec options (`options`, declared in sw2.model_options) and
# `configure`; one file each
MODELS: Registry[Any] = Registry("model", "sw2.model_options", about=lambda model: model.options)
SOURCES: Registry[Source] = Registry("data source")
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")
SCHEDULES: Registry[Schedule] = Registry("schedule")
# a task: what differs between classify, regress, generate_text, ... (sw2.tasks.base.Task); one file each, its
# metrics and checks declared in sw2.task_rules
TASKS: Registry[Task] = Registry("task", "sw2.task_rules")
# how a loaded bundle runs its network (torch eager, ONNX Runtime, ...): a factory bundle -> Runner; one file each
BACKENDS: Registry[Backend] = Registry("backend", "sw2.runtime")

# the built-in sources, optimizers and schedules: each name, and the module that registers it
SOURCES.declare("csv", "sw2.data.sources.tables")
SOURCES.declare("parquet", "sw2.data.sources.tables")
SOURCES.declare("package", "sw2.data.sources.packaged")
SOURCES.declare("sklearn", "sw2.data.sources.packaged")  # package's former name
SOURCES.declare("idx", "sw2.data.sources.idx_pairs")
SOURCES.declare("images", "sw2.data.sources.image_folders")
OPTIMIZERS.declare("adam", "sw2.engine.optimizers.adam")
OPTIMIZERS.declare("adamw", "sw2.engine.optimizers.adam")
OPTIMIZERS.declare("sgd", "sw2.engine.optimizers.sgd")
OPTIMIZERS.declare("momentum", "sw2.engine.optimizers.sgd")
OPTIMIZERS.declare("nesterov", "sw2.engine.optimizers.sgd")
OPTIMIZERS.declare("muon", "sw2.engine.optimizers.muon")
SCHEDULES.declare("constant", "sw2.engine.schedules.constant")
SCHEDULES.declare("cosine", "sw2.engine.schedules.cosine")
SCHEDULES.declare("linear", "sw2.engine.schedules.linear")
SCHEDULES.declare("onecycle", "sw2.engine.schedules.onecycle")
SCHEDULES.declare("step", "sw2.engine.schedules.step")
