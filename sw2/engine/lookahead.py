"""Lookahead in airbench's form: a slow copy of the weights that trails the fast ones.

Every `every` steps the slow copy moves toward the fast weights and the model is reset onto it. The
slow copy's inertia grows with training progress (decay 0.95**every * progress**3), so early training
runs at full speed and the end of training averages over the last steps; training ends on the slow copy.
"""

from __future__ import annotations

import torch
from torch import nn


def _distinct(model: nn.Module) -> list[torch.Tensor]:
    """The model's tensors, a tied weight (one tensor under two names) once."""
    seen: set[int] = set()
    out = []
    for t in model.state_dict().values():
        if t.data_ptr() not in seen or t.numel() == 0:
            seen.add(t.data_ptr())
            out.append(t)
    return out


class Lookahead:
    def __init__(self, model: nn.Module, every: int = 5) -> None:
        self.every = every
        self.slow = [t.detach().clone() for t in _distinct(model)]

    def _pull(self, model: nn.Module, decay: float) -> None:
        with torch.no_grad():
            for slow, fast in zip(self.slow, _distinct(model)):
                if fast.dtype.is_floating_point:
                    slow.lerp_(fast, 1 - decay)
                    fast.copy_(slow)

    def step(self, model: nn.Module, step: int, progress: float) -> None:
        if step % self.every == 0:
            self._pull(model, 0.95**self.every * min(progress, 1.0) ** 3)

    def finish(self, model: nn.Module) -> None:
        """Put the slow weights into the model."""
        self._pull(model, 1.0)
