"""The built-in tasks as the spec knows them, declared without importing them (a task's module imports torch):
each one's name, its metrics (what `metrics:` and metric tests may name), whether its outputs blend, and what
it refuses of a spec.

`sw2.plugins.TASKS` imports this module when a task name is first needed; a task's own module
(sw2/tasks/<name>.py, whose class takes its metrics from here) only when the task is used (`TASKS.get`). The
checks are the tasks' own: `Task.check_spec` and its overrides call the functions here. A task registered by
a plug-in of yours ($SW2_PLUGINS) is imported with it, and the spec asks the task itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sw2 import control_defaults
from sw2.plugins import TASKS
from sw2.registry import did_you_mean

if TYPE_CHECKING:
    from sw2.spec import Spec


def check_task(task: Any, spec: Spec) -> None:
    """What every task refuses (`Task.check_spec`): a teacher or snapshots when its outputs do not blend, and
    a metric it does not report. `task` has a `name`, `metrics` and `blend`."""
    if spec.train.distill is not None and task.blend is None:
        raise ValueError(f"train.distill: task {task.name} cannot learn from a teacher; remove train.distill")
    if spec.train.adversarial is not None and task.blend is None:
        raise ValueError(f"train.adversarial: task {task.name} has no examples to perturb; remove it")
    if spec.train.adversarial is not None and spec.train.distill is not None:
        raise ValueError("train.adversarial: not with train.distill; give one of them")
    if spec.train.snapshots and task.blend is None:
        raise ValueError(f"train.snapshots: a {task.name} model's outputs cannot be averaged; remove it")
    named = [("metrics", m) for m in spec.metrics]
    named += [(f"tests.{i}.metric", t.metric) for i, t in enumerate(spec.tests) if t.kind == "metric"]
    for field_, m in named:
        if m not in task.metrics:
            raise ValueError(f"{field_}: '{m}' is not a metric of task {task.name}; {did_you_mean(m, task.metrics)}")


def check_supervised(spec: Spec) -> None:
    """A task that learns a target column refuses a language model's choices (a text file, a decoder model,
    the char tokenizer): `Supervised.check_spec`."""
    if spec.data.source == "text":
        raise ValueError("data.source: text is for task: generate_text (a language model)")
    if spec.model.language_model:
        raise ValueError(f"model: {spec.model.name} is a language model; use it with task: generate_text")
    if spec.text.tokenizer == "char":
        raise ValueError("text.tokenizer: char is for task: generate_text; use bpe, wordpiece or word")


def check_generate_text(spec: Spec) -> None:
    """A language model reads one text file, with a lossless tokenizer and a decoder model:
    `GenerateText.check_spec`."""
    if spec.model.name != "auto" and not spec.model.language_model:
        raise ValueError(f"model: task generate_text takes a language model (gpt, charrnn), not {spec.model.name}")
    if spec.text.tokenizer not in ("char", "bpe"):
        raise ValueError("text.tokenizer: task generate_text takes char or bpe (byte-level)")
    if spec.text.tokenizer == "bpe" and spec.text.vocab_size <= 256:
        raise ValueError("text.vocab_size: byte-level bpe starts from the 256 bytes; give more (e.g. 1024)")
    if spec.data.source not in ("auto", "text") or not spec.data.path:
        raise ValueError("data: task generate_text reads a text file; give data.path (e.g. input.txt)")


def check_generate_image(spec: Spec) -> None:
    """An image generator reads images and trains an image-generating model: `GenerateImage.check_spec`."""
    if spec.model.name != "auto" and not spec.model.image_generator:
        raise ValueError(
            f"model: task generate_image takes an image generator (dcgan, diffusion), not {spec.model.name}"
        )
    if spec.data.source == "text":
        raise ValueError("data.source: text is for task: generate_text; task generate_image reads images")
    if spec.train.distill is not None or spec.train.snapshots:
        raise ValueError("train: distill and snapshots are for models of examples; remove them for generate_image")


def check_control(spec: Spec) -> None:
    """A policy acts in an environment: `Control.check_spec` (the environment itself is checked when it is made)."""
    if spec.model.name != "auto" and not spec.model.policy:
        raise ValueError(f"model: task control trains a policy (ppo, dqn), not {spec.model.name}")
    if spec.data.env is None:
        raise ValueError("data: task control acts in an environment; give data.env (e.g. CartPole-v1)")
    if spec.data.source != "auto":
        raise ValueError(f"data.source: task control acts in data.env; remove source: {spec.data.source}")
    if spec.train.distill is not None or spec.train.snapshots:
        raise ValueError("train: distill and snapshots are for models of examples; remove them for task control")
    if spec.tests:
        raise ValueError("tests: task control has no model tests yet; its judgement is the mean return (metrics)")
    t = spec.train
    ignored = [("grad_clip", "model.max_grad_norm"), ("accumulate", None), ("dropout", None),
               ("label_smoothing", None), ("prune_easy", None), ("lookahead", None), ("snapshots", None)]  # fmt: skip
    for name, instead in ignored:
        if getattr(t, name) != type(t).model_fields[name].default:
            hint = f"; set {instead}" if instead else ""
            raise ValueError(f"train.{name}: a policy's update does not use it; remove it{hint}")
    if t.seed < 0:
        raise ValueError("train.seed: task control seeds its environments with it; give 0 or more")
    if spec.augment.tta != "none" or spec.augment.flip or spec.augment.translate or spec.augment.cutout:
        raise ValueError("augment: a policy acts on its environment's observations; remove augment")


@dataclass(frozen=True)
class DeclaredTask:
    """A built-in task until its module is imported: what the spec reads of it (`TASKS.about`)."""

    name: str
    metrics: tuple[str, ...]
    blend: str | None  # how several models' outputs combine: "probabilities", "values" or None (sw2.tasks.base)
    checks: Callable[[Spec], None]  # its own checks of a spec, after those of every task
    fill: Callable[[Spec], Spec] | None = None  # sets what a spec leaves unset (sw2.spec.Spec._task_fills)

    def check_spec(self, spec: Spec) -> None:
        check_task(self, spec)
        self.checks(spec)


CLASSIFY = DeclaredTask(
    "classify", ("accuracy", "macro_f1", "log_loss", "precision", "recall", "f1"), "probabilities", check_supervised
)
REGRESS = DeclaredTask("regress", ("mae", "rmse", "r2"), "values", check_supervised)
GENERATE_TEXT = DeclaredTask(
    "generate_text",
    ("nats_per_char", "bits_per_char", "nats_per_token", "perplexity", "accuracy"),
    None,
    check_generate_text,
)

GENERATE_IMAGE = DeclaredTask(
    "generate_image",
    ("neg_frechet_distance", "frechet_distance", "confident", "class_entropy"),
    None,
    check_generate_image,
)

CONTROL = DeclaredTask(
    "control", ("mean_return", "std_return", "mean_length"), None, check_control, control_defaults.fill
)

# every built-in task: its name, the module that implements it, what the spec reads of it
for _task in (CLASSIFY, REGRESS, GENERATE_TEXT, GENERATE_IMAGE, CONTROL):
    TASKS.declare(_task.name, f"sw2.tasks.{_task.name}", _task)
