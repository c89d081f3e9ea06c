"""ensemble: several trained networks that read the same inputs, their outputs combined: probabilities
averaged (classify; the output is the log of the mean probability, so a softmax of it gives the mean) or
values averaged (regress). `sw2 ensemble` builds one from bundles, `train.snapshots` from one run's
snapshots; a spec does not name it as its model."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from sw2.errors import UserError
from sw2.model_options import EnsembleOptions
from sw2.models.base import Model
from sw2.plugins import MODELS


@MODELS.register("ensemble")
class Ensemble(Model):
    options = EnsembleOptions

    def __init__(self, members: list[dict[str, Any]], average: Literal["probabilities", "values"]) -> None:
        """`members`: each one's registered model name and kwargs (as a bundle's model.json holds them)."""
        super().__init__()
        self.average = average
        self.members = nn.ModuleList(MODELS.get(m["name"])(**m["kwargs"]) for m in members)

    @staticmethod
    def configure(options: Any, encoder: Any, n_train: int) -> dict[str, Any]:
        raise UserError("model: ensemble is built by sw2 ensemble or train.snapshots; name a model to train")

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.members[0].head

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        outs = torch.stack([m(batch).float() for m in self.members])
        if self.average == "values":
            return outs.mean(0)
        return torch.logsumexp(outs.log_softmax(-1), dim=0) - math.log(len(self.members))
