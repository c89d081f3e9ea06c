"""Gradient-boosted trees for tables, fitted by scikit-learn and run as tensors.

scikit-learn's GradientBoostingClassifier / Regressor (up to 31 leaves a tree, 20 rows a leaf, shrinkage 0.1)
chooses its number of trees by 3-fold cross-validation on the training split (each fold's trees grown 25 at
a time while the mean held-out loss still falls; a 10% hold-out, as HistGradientBoosting's early stopping
uses, chose too few trees on noisy targets), then grows that many on the whole split: the val split stays a
fair judge between models.
The trees are then read from its public tree arrays into buffers (feature, threshold, children, leaf value of
every node), so the bundle holds no pickle and the network is plain tensor code: each row walks every tree
at once, one level a step (a leaf points to itself), and the leaves' values add up per class. It exports to
ONNX, serves and is explained like any sw2 model; fitting needs scikit-learn, predicting does not.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.model_options import GBMOptions
from sw2.models.base import Model
from sw2.models.linear import direct_loss
from sw2.models.mlp import table_inputs
from sw2.plugins import MODELS

BUFFERS = ("feature", "threshold", "left", "right", "value", "column", "depth")
FLOATS = ("threshold", "value")  # float64, as scikit-learn's trees hold them
CHUNK, PATIENCE, MOST = 25, 50, 2000  # trees added at a time; stop this many trees after the best; at most
FOLDS = 3  # the number of trees is chosen by 3-fold cross-validation on the training split


def _sklearn_boosting(discrete: bool, seed: int) -> Any:
    try:
        from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    except ImportError:
        raise UserError("model: gbm is fitted by scikit-learn: pip install 'sw2[data]'") from None
    kind = GradientBoostingClassifier if discrete else GradientBoostingRegressor
    return kind(
        n_estimators=CHUNK, learning_rate=0.1, max_leaf_nodes=31, max_depth=None, min_samples_leaf=20,
        random_state=seed, warm_start=True,
    )  # fmt: skip


def two_logits(raw: torch.Tensor) -> torch.Tensor:
    """A binary booster's one log-odds per row (rows x 1) as two logits whose softmax is the same."""
    return torch.cat([-raw / 2, raw / 2], -1)


def _held_out_losses(booster: Any, x: np.ndarray, y: np.ndarray, discrete: bool) -> np.ndarray:
    """The held-out loss after each tree."""
    losses = []
    for raw in booster.staged_decision_function(x) if discrete else booster.staged_predict(x):
        raw = torch.as_tensor(np.asarray(raw, dtype=np.float64)).reshape(len(x), -1)
        out = two_logits(raw) if discrete and raw.shape[1] == 1 else raw
        losses.append(direct_loss(out, torch.as_tensor(y, dtype=None if discrete else torch.float64), discrete).item())
    return np.asarray(losses)


@MODELS.register("gbm")
class GBM(Model):
    options = GBMOptions
    direct = True

    def __init__(self, n_num: int, vocab_sizes: list[int], n_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_out, self.levels = n_out, 0  # levels: the deepest leaf's depth, the walk's steps
        for name in BUFFERS:  # sized by the fit, or by the state dict a bundle loads
            self.register_buffer(name, torch.zeros(0, 0, dtype=torch.float64 if name in FLOATS else torch.long))
        with warnings.catch_warnings():  # no input columns to weigh: a head of bias only
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.head = nn.Linear(0, n_out)  # its bias: the trees' starting score

    def _load_from_state_dict(self, state: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        for name in BUFFERS:  # take the saved trees' sizes
            if prefix + name in state:
                setattr(self, name, torch.empty_like(state[prefix + name]))
        super()._load_from_state_dict(state, prefix, *args, **kwargs)
        self.levels = int(self.depth.max()) if self.depth.numel() else 0

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [batch[k].to(torch.float64) for k in ("num", "cat") if k in batch]
        x = torch.cat(parts, 1)  # scikit-learn compares float32 values with float64 thresholds
        trees, width = self.left.shape
        offset = torch.arange(trees, device=x.device) * width
        node = torch.zeros_like(x[:, :1], dtype=torch.long) + offset  # every row at every tree's root (flat index)
        for _ in range(self.levels):  # a leaf points to itself
            go_left = x.gather(1, self.feature.flatten()[node]) <= self.threshold.flatten()[node]
            node = torch.where(go_left, self.left.flatten()[node], self.right.flatten()[node]) + offset
        leaf = self.value.flatten()[node]  # rows x trees
        outputs = F.one_hot(self.column.flatten(), 1 if self.n_out == 2 else self.n_out).to(leaf.dtype)
        raw = (leaf @ outputs).to(torch.float32)  # each tree's leaf added to its output
        return (two_logits(raw) if self.n_out == 2 else raw) + self.head.bias

    def fit_directly(self, train: Any, discrete: bool, seed: int) -> dict[str, Any]:
        x, y = self._matrix(train.inputs), train.target.numpy()
        fold = np.random.default_rng(seed).permutation(len(y)) % FOLDS
        boosters = [_sklearn_boosting(discrete, seed) for _ in range(FOLDS)]
        while True:  # every fold's trees grown together; their held-out losses averaged
            curve = 0.0
            for k, booster in enumerate(boosters):
                booster.fit(x[fold != k], y[fold != k])
                curve = curve + _held_out_losses(booster, x[fold == k], y[fold == k], discrete) / FOLDS
            best = int(np.argmin(curve)) + 1
            n = boosters[0].n_estimators
            if n - best >= PATIENCE or n >= MOST:
                break
            for booster in boosters:
                booster.n_estimators += CHUNK
        booster = _sklearn_boosting(discrete, seed)
        booster.set_params(n_estimators=best, warm_start=False)
        booster.fit(x, y)
        self._read_trees(booster, best)
        with torch.no_grad():  # the starting score: what scikit-learn predicts beyond the trees' sum
            self.head.bias.zero_()
            start = self._sklearn_raw(booster, x[:1]) - self(train.take(np.arange(1)).inputs)[0]
            self.head.bias.copy_(start)
        return {"trees": best, "folds": FOLDS, "leaves_at_most": 31}

    @staticmethod
    def _matrix(inputs: dict[str, torch.Tensor]) -> np.ndarray:
        parts = [inputs[k].to(torch.float32) for k in ("num", "cat") if k in inputs]
        return torch.cat(parts, 1).numpy()

    def _sklearn_raw(self, booster: Any, x: np.ndarray) -> torch.Tensor:
        """scikit-learn's raw score for one row, as this model's outputs."""
        raw = booster.decision_function(x) if hasattr(booster, "classes_") else booster.predict(x)
        raw = torch.as_tensor(np.asarray(raw, dtype=np.float64)).reshape(-1)
        return (two_logits(raw) if self.n_out == 2 else raw).to(torch.float32)

    def _read_trees(self, booster: Any, trees: int) -> None:
        """The first `trees` stages' trees as padded node arrays (shrinkage folded into the leaf values)."""
        found = [(t.tree_, k) for stage in booster.estimators_[:trees] for k, t in enumerate(stage)]
        width = max(t.node_count for t, _ in found)
        arrays = {n: np.zeros((len(found), width), np.float64 if n in FLOATS else np.int64) for n in BUFFERS[:5]}
        for i, (t, _) in enumerate(found):
            n, leaf = t.node_count, t.children_left < 0
            own = np.arange(n)
            arrays["feature"][i, :n] = np.where(leaf, 0, t.feature)
            arrays["threshold"][i, :n] = np.where(leaf, 0.0, t.threshold)
            arrays["left"][i, :n] = np.where(leaf, own, t.children_left)
            arrays["right"][i, :n] = np.where(leaf, own, t.children_right)
            arrays["value"][i, :n] = t.value[:, 0, 0] * booster.learning_rate
        arrays["column"] = np.array([[k] for _, k in found], np.int64)
        arrays["depth"] = np.array([[t.max_depth] for t, _ in found], np.int64)
        for name, a in arrays.items():
            setattr(self, name, torch.from_numpy(a))
        self.levels = int(self.depth.max())

    @staticmethod
    def configure(spec: GBMOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        return table_inputs("gbm", encoder)
