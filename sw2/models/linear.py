"""A linear model for tables: standardised numbers and one-hot categories, fitted to the optimum directly.

Logistic regression for classification, ridge regression for regression: the convex loss plus an L2 penalty
on the weights, minimised by L-BFGS on the whole training split (no epochs, no learning rate). The penalty is
chosen by 5-fold cross-validation on the training split (as LogisticRegressionCV / RidgeCV do): a short path
from strong to none, each fit warm-started from the last; the lowest mean held-out loss wins. What
scikit-learn's LogisticRegression / Ridge fit, as a torch module that exports, serves and is explained like
any sw2 model.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.encode import Encoder
from sw2.model_options import LinearOptions
from sw2.models.base import Model
from sw2.models.mlp import table_inputs
from sw2.plugins import MODELS

PENALTIES = (1.0, 0.1, 0.01, 1e-3, 1e-4, 0.0)  # L2 strength per example, tried strongest first
FOLDS = 5


def direct_loss(out: torch.Tensor, y: torch.Tensor, discrete: bool) -> torch.Tensor:
    """Cross-entropy on class indices, or the squared error on the (standardised) value."""
    return F.cross_entropy(out, y) if discrete else F.mse_loss(out.squeeze(1), y)


@MODELS.register("linear")
class Linear(Model):
    options = LinearOptions
    direct = True

    def __init__(self, n_num: int, vocab_sizes: list[int], n_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(v, n_out) for v in vocab_sizes)  # one row per category value
        with warnings.catch_warnings():  # no input columns to weigh: a head of bias only
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.head = nn.Linear(n_num, n_out)
        for e in self.embeds:
            nn.init.zeros_(e.weight)
        nn.init.zeros_(self.head.weight)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.head(batch["num"]) if "num" in batch else self.head.bias.expand(len(batch["cat"]), -1)
        for i, e in enumerate(self.embeds):
            out = out + e(batch["cat"][:, i])
        return out

    def _weights(self) -> list[torch.Tensor]:
        return [self.head.weight, *(e.weight for e in self.embeds)]

    def _solve(self, inputs: dict[str, torch.Tensor], target: torch.Tensor, discrete: bool, penalty: float) -> None:
        """Minimise the loss plus penalty / 2 x the squared weights, from where the weights stand."""
        opt = torch.optim.LBFGS(
            self.parameters(), lr=1, max_iter=500, tolerance_grad=1e-6, tolerance_change=1e-9,
            history_size=20, line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = direct_loss(self(inputs), target, discrete)
            loss = loss + penalty / 2 * sum((w**2).sum() for w in self._weights())
            loss.backward()
            return loss

        opt.step(closure)

    def fit_directly(self, train: Any, discrete: bool, seed: int) -> dict[str, Any]:
        start = {k: v.clone() for k, v in self.state_dict().items()}
        folds = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)) % FOLDS
        held_out = torch.zeros(len(PENALTIES))
        for fold in range(min(FOLDS, len(train))):
            inside, outside = (
                train.take(np.flatnonzero((folds != fold).numpy())),
                train.take(np.flatnonzero((folds == fold).numpy())),
            )
            self.load_state_dict(start)
            for i, penalty in enumerate(PENALTIES):  # strongest first, each from the last one's weights
                self._solve(inside.inputs, inside.target, discrete, penalty)
                with torch.no_grad():
                    held_out[i] += direct_loss(self(outside.inputs), outside.target, discrete).item() * len(outside)
        penalty = PENALTIES[int(held_out.argmin())]
        self.load_state_dict(start)
        for p in PENALTIES[: PENALTIES.index(penalty) + 1]:  # the same path on the whole split
            self._solve(train.inputs, train.target, discrete, p)
        return {"penalty": penalty, "cross_validated": dict(zip(map(str, PENALTIES), (held_out / len(train)).tolist()))}

    @staticmethod
    def configure(spec: LinearOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        return table_inputs("linear", encoder)
