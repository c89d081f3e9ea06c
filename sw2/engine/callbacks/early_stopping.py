"""Early stopping: stop after `patience` epochs without a better validation score, and end on the weights of
the best epoch. No patience is lost while gradual unfreezing is still adding layer groups (`patient_until`,
a share of the steps): a newly unfrozen group may make the score worse for a while."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context
from sw2.spec import EarlyStopping as EarlyStoppingSpec


class EarlyStopping(Callback):
    def __init__(self, model: nn.Module, spec: EarlyStoppingSpec, patient_until: float = 0.0) -> None:
        self.model, self.spec, self.patient_until = model, spec, patient_until
        self.best_score, self.best_epoch, self.bad_epochs = -math.inf, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def score(self, row: dict[str, Any]) -> float | None:
        """The epoch's score, higher is better; None without validation."""
        if row.get("val_loss") is None:
            return None
        return -row["val_loss"] if self.spec.monitor == "val_loss" else row["val_metric"]

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        score = self.score(row)
        if score is None:
            return
        if score > self.best_score + self.spec.min_delta:
            self.best_score, self.best_epoch, self.bad_epochs = score, ctx.epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        elif ctx.step >= self.patient_until * ctx.total_steps:
            self.bad_epochs += 1
            if self.bad_epochs >= self.spec.patience and ctx.stop is None:
                ctx.stop = "early_stopping"

    def on_train_end(self, ctx: Context) -> None:
        if self.best_state is not None and self.best_epoch != ctx.epoch:
            self.model.load_state_dict(self.best_state)  # restore the best weights
        ctx.best_epoch = self.best_epoch or None

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.bad_epochs, self.best_state = int(state["bad_epochs"]), state["best_state"]
