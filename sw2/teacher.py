"""`train.distill`: the teacher bundle a run learns from, checked against the run and made into the engine's
`DistillStep` (sw2/engine/distill.py).

The teacher must do the same task with the same classes and have been trained on this run's training split
(its fingerprint's data hash): a teacher that saw this run's val or test rows would pass their labels on to
the student, and every held-out figure would flatter it. Its model and preprocessing may differ (a fine-tuned
MiniLM teaching a bag of words). Where it reads exactly the student's inputs and training augments them, it
runs on each augmented batch; otherwise its outputs are computed once per training example, through its own
preprocessing and test-time augmentation.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from sw2 import log
from sw2.bundle import Bundle
from sw2.data.dataset import Prepared
from sw2.engine.augment import augmented
from sw2.engine.distill import Cached, DistillStep, Live, Teacher
from sw2.errors import UserError
from sw2.spec import Spec
from sw2.tasks import Task

FIELD = "train.distill.teacher"


def load_teacher(spec: Spec, root: Path, data: Prepared) -> Bundle:
    """The teacher bundle `spec` names, refused (UserError naming the field) where it cannot teach this run."""
    assert spec.train.distill is not None
    path = root / spec.train.distill.teacher
    try:
        teacher = Bundle(path)
    except UserError as err:
        raise UserError(f"{FIELD}: {err}") from None
    if teacher.task.name != spec.task:
        raise UserError(
            f"{FIELD}: {path} is a {teacher.task.name} model and this spec's task is {spec.task}; give a teacher of "
            f"the same task"
        )
    ours, theirs = data.encoder.classes, getattr(teacher.encoder, "classes", None)
    if ours != theirs:
        raise UserError(f"{FIELD}: {path} predicts classes {theirs}, this run's are {ours}; give a teacher of these")
    if teacher.fingerprint.get("data_sha256") != data.fingerprint:
        raise UserError(
            f"{FIELD}: {path} was trained on other rows than this spec's training split, so it may have seen this "
            f"run's val or test rows; train the teacher with the same data, data.split and data.limit"
        )
    return teacher


def distill_step(spec: Spec, bundle: Bundle | None, data: Prepared, task: Task, model: nn.Module) -> DistillStep | None:
    """The training step of a run with `train.distill` and its teacher `bundle` (None without)."""
    d = spec.train.distill
    if d is None or bundle is None:
        return None
    teacher: Teacher
    same_inputs = bundle.encoder.to_json() == data.encoder.to_json()
    if same_inputs and any(augmented(spec.augment, data.train.inputs)):
        teacher, how = Live(bundle.model), "on each augmented batch"
    else:
        teacher, how = Cached(bundle.outputs(data.raw_train)), "once per training example"
    name = bundle.fingerprint.get("model", "model")
    log.info(f"sw2: distilling from {bundle.path} ({name}), its outputs computed {how}")
    return DistillStep(model, task, spec.train, teacher, d.temperature, d.alpha)
