"""The target's encoding, owned by the task: what a task that learns a target column learns of it from the
training split (the classes and their counts; the mean and spread of a number) and how it turns raw target
values into tensors. Saved as JSON beside the input encoder (preprocess.json's "target"), so the data layer
never asks which task it serves."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from sw2.tasks.base import Task


@dataclass
class TargetCodec:
    owner: Task = field(repr=False)  # the task whose `fit_target` / `encode_target` fill and read this
    classes: list[Any] | None = None
    class_counts: list[int] | None = None  # in the training split, for the majority-class baseline
    target_mean: float = 0.0
    target_std: float = 1.0

    def encode(self, values: np.ndarray) -> torch.Tensor:
        """The encoded target, as the task encodes it (e.g. class index, -1 for a class unseen in train)."""
        return self.owner.encode_target(self, values)

    @property
    def n_outputs(self) -> int:
        return self.owner.n_outputs(self)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "owner"}

    @classmethod
    def from_json(cls, owner: Task, state: dict[str, Any]) -> TargetCodec:
        names = {f.name for f in fields(cls)} - {"owner"}
        unknown = set(state) - names
        if unknown:
            raise KeyError(f"unknown target field {sorted(unknown)[0]!r}")
        return cls(owner, **state)
