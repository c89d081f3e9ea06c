"""Tasks as plug-ins: classify, regress and generate_text, each one file that owns everything which
differs between them (the target's encoding, loss and score, metrics and baseline, predictions, report
sections, model-test metrics, pre-flight checks). The run pipeline (`sw2.api.train`) and every other
module ask the task; none asks which task it is.

The registry lives in `sw2.plugins` (light: the spec validates `task:` against it), so any layer may look
a task up by name, as it looks up a model; a task's module is imported on its first lookup. The spec reads
a built-in task's metrics and checks from `sw2.task_rules`, which declares it, without importing torch.
A new task is one file that subclasses `Task` (or `Supervised`) and registers an instance,
`TASKS.register("name")(MyTask("name", "metric"))`; import it before use, or name its module in
$SW2_PLUGINS for the CLI (see sw2.registry).
"""

from __future__ import annotations

from sw2.plugins import TASKS
from sw2.tasks.base import Task

__all__ = ["TASKS", "Task"]
