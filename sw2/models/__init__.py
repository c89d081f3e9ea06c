"""Models by registry. A model takes the encoder's dict of tensors and returns one row of outputs each.

A model is one file in this package: a `Model` subclass registered with `@MODELS.register("name")`, its
spec options (a `sw2.spec.ModelOptions` subclass, named by the class's `options`) and `configure`. A
built-in model's options live in `sw2.model_options`, which declares the model with them, so that the spec
validates them without importing torch; `sw2.plugins.MODELS` imports the model's module when it is built.

Every model is rebuilt from (name, kwargs) saved as JSON in the bundle, so loading never unpickles.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import torch

from sw2.data.corpus import Corpus
from sw2.data.dataset import TensorSet
from sw2.data.encode import Encoder
from sw2.models.base import Model
from sw2.plugins import MODELS
from sw2.spec import AutoModel, ModelOptions, Spec, model_options

if TYPE_CHECKING:
    from sw2.tasks import Task


def choose(model: ModelOptions, encoder: Encoder | Corpus, n_train: int) -> tuple[str, dict[str, Any]]:
    """Resolve `auto` (its options become the picked model's) and fill the size knobs the spec left empty,
    from the input type and data size."""
    if isinstance(model, AutoModel):
        model = model.resolved(encoder.default_model)
    return model.name, MODELS.get(model.name).configure(model, encoder, n_train)


def candidates(model: ModelOptions, encoder: Encoder | Corpus, task: Task, target: torch.Tensor) -> list[ModelOptions]:
    """The models to train and pick from on val: the spec's own, or under `model: auto` the default for the
    data's kind (its options the spec's), and for tables of one class or value per row (`target`) also
    gradient-boosted trees (when scikit-learn is installed to fit them) and a linear model, as AutoGluon and
    the scikit-learn baselines would try."""
    if not isinstance(model, AutoModel):
        return [model]
    first = model.resolved(encoder.default_model)
    if encoder.default_model != "mlp" or task.blend not in ("probabilities", "values") or target.ndim != 1:
        return [first]
    others = ["gbm"] if importlib.util.find_spec("sklearn") is not None else []
    return [first, *(model_options(name)(name=name) for name in [*others, "linear"])]


def build(name: str, kwargs: dict[str, Any]) -> Model:
    """The registered model `name`; its random initial weights (a bundle overwrites them at once) are drawn
    without moving the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        return MODELS.get(name)(**kwargs)


def initialised(
    spec: Spec, encoder: Encoder | Corpus, train: TensorSet, task: Task
) -> tuple[str, dict[str, Any], Model]:
    """The spec's model, seeded, its output bias at the label prior and data-dependent parts fitted on train."""
    name, kwargs = choose(spec.model, encoder, len(train))
    kwargs["dropout"] = spec.train.dropout
    with torch.random.fork_rng(devices=[]):  # seeded here; the caller's random state is left as it was
        torch.manual_seed(spec.train.seed)
        model = MODELS.get(name)(**kwargs)
        with torch.no_grad():
            model.head.bias.copy_(task.output_bias(train.target, encoder.n_outputs))
            model.init_from_encoder(encoder)
            model.init_from_data(train.inputs)
            model.init_from_labels(train.inputs, train.target)
    return name, kwargs, model


__all__ = ["MODELS", "Model", "build", "candidates", "choose", "initialised"]
