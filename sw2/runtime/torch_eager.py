"""The default backend: the bundle's PyTorch module, eager, with the spec's test-time augmentation."""

from __future__ import annotations

from typing import Any

import torch

from sw2.engine.predict import predict
from sw2.plugins import BACKENDS
from sw2.runtime import Runner


@BACKENDS.register("torch")
def torch_runner(bundle: Any) -> Runner:
    def run(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return predict(bundle.model, inputs, tta=bundle.spec.augment.tta)

    return run
