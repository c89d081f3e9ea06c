"""Models by registry. A model takes the encoder's dict of tensors and returns one row of outputs each.

Every model is rebuilt from (name, kwargs) saved as JSON in the bundle, so loading never unpickles.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from sw2.data.encode import Encoder
from sw2.models import convnet, mlp  # noqa: F401  (they register themselves)
from sw2.models.registry import MODELS
from sw2.spec import ModelSpec


def choose(model: ModelSpec, encoder: Encoder, n_train: int) -> tuple[str, dict[str, Any]]:
    """Resolve `auto` and fill the size knobs the spec left empty, from the input type and data size."""
    name = model.name
    if name == "auto":
        name = "convnet" if encoder.image_shape is not None else "mlp"
    return name, MODELS.get(name).configure(model, encoder, n_train)


def build(name: str, kwargs: dict[str, Any]) -> nn.Module:
    return MODELS.get(name)(**kwargs)


__all__ = ["MODELS", "build", "choose"]
