"""The one place that builds the trainable of a task that learns from examples (classify, regress,
generate_text and plug-ins like them): the spec's model initialised on the training data, the stream of
shuffled, augmented batches, the supervised step (or distillation's), and validation on the held-out split.
Every tool that trains such a task (the run, the tuner, the pre-flight, the doctor, pruning) gets it here
through `Task.trainable`."""

from __future__ import annotations

from typing import Any

from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine.adversarial import AdversarialStep
from sw2.engine.batches import Shuffled
from sw2.engine.distill import DistillStep, Teaching
from sw2.engine.step import SupervisedStep
from sw2.engine.trainable import SUPERVISED, Supervision, Trainable, nothing_held_out
from sw2.engine.validate import validate
from sw2.errors import UserError
from sw2.models import initialised
from sw2.spec import Spec


def from_examples(
    task: Any,
    spec: Spec,
    data: Any = None,
    *,
    train: TensorSet | None = None,
    val: TensorSet | None = None,
    init_on: TensorSet | None = None,
    model: tuple[str, dict[str, Any], nn.Module] | None = None,
    teaching: Teaching | None = None,
) -> Trainable:
    """`data` (`encoder`, `train`, `val`) as a trainable: trained on `train` (default `data.train`), judged on
    `val` (default `data.val`), its model fresh from the spec (initialised on `init_on`, default the training
    set) or the given `(name, kwargs, module)`; with `teaching`, the step distils from a teacher. `data` may
    be None where `train`, `val` and `model` are given (a network of the caller's own)."""
    train = data.train if train is None else train
    val = data.val if val is None else val
    name, kwargs, net = model or initialised(spec, data.encoder, train if init_on is None else init_on, task)
    step: SupervisedStep
    if teaching is not None:
        step = DistillStep(net, task, spec.train, teaching.teacher, teaching.temperature, teaching.alpha)
    elif spec.train.adversarial is not None:
        if getattr(net, "direct", False):
            raise UserError(
                f"train.adversarial: model {name} is fitted by its own solver; give a network (mlp, convnet)"
            )
        step = AdversarialStep(net, task, spec.train)
    else:
        step = SupervisedStep(net, task, spec.train)
    evaluate = nothing_held_out
    if len(val):

        def evaluate(device: Any = None) -> dict[str, float]:  # one view: test-time augmentation is for the end
            loss, metric = validate(net, task, val, device=device)
            return {"val_loss": loss, "val_metric": metric}

    direct = None
    if getattr(net, "direct", False):

        def direct(seed: int) -> tuple[dict[str, Any], float]:
            chose = net.fit_directly(train, task.discrete, seed)
            net.eval()
            return chose, validate(net, task, train)[0]

    return Trainable(
        modules={"model": net},
        step=step,
        batches=Shuffled(train, spec.augment, spec.train.seed, spec.train.batch_size),
        evaluate=evaluate,
        metric=task.metric,
        offers=frozenset({SUPERVISED}),
        built={"model": (name, kwargs)},
        direct=direct,
        supervision=Supervision(task, train, val),
    )
