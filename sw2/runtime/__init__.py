"""Runtimes that execute a bundle's network: a Runner maps the encoder's input tensors to raw outputs.

A backend is a plug-in in `sw2.plugins.BACKENDS`: a callable `(bundle) -> Runner`, registered by one file
in this package. `Bundle(path, backend=NAME)` picks one; everything above the bundle (tasks, `sw2 predict`,
the server) calls `bundle.run(inputs)` and never knows which.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class Runner(Protocol):
    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw outputs (logits or standardised values), float32 on the CPU, one row per example, in order."""
        ...


class Backend(Protocol):
    def __call__(self, bundle: Any) -> Runner: ...
