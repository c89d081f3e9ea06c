"""Gradient-boosted trees for tables, fitted by scikit-learn and run as tensors.

scikit-learn's HistGradientBoostingClassifier / Regressor (up to 31 leaves a tree, 20 rows a leaf, shrinkage
0.1, numbers binned into 255 quantiles: 4-10x less CPU time than GradientBoosting on a few hundred to a few
thousand rows, the same on the smallest; `X_val` in its fit needs scikit-learn 1.7) chooses its number of trees
by 3-fold cross-validation on the training split (each fold's trees grown 25 at a time, the held-out loss
recorded after every tree, while the folds' mean held-out loss still falls; a single 10% hold-out, as
HistGradientBoosting's own early stopping uses, chose too few trees on noisy targets), then grows that many on
the whole split: the val split stays a fair judge between models.
The trees are then read from the booster's tree arrays into buffers, so the bundle holds no pickle and the
network is plain tensor code. Each tree is held as its split nodes (feature, threshold) and, per leaf, which
splits its path goes left (+1) and right (-1) at: a row reaches the leaf whose path it agrees with at every
split, found for all rows, trees and leaves at once by one batched matrix product (Hummingbird's GEMM
strategy: a walk of the trees one level a step is 5-10x slower on a CPU). The leaves' values add up per class.
It exports to ONNX, serves and is explained like any sw2 model; fitting needs scikit-learn, predicting does not.
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
from sw2.models.mlp import table_inputs
from sw2.plugins import MODELS

BUFFERS = ("feature", "threshold", "path", "turns", "value", "column")
DTYPES = {"threshold": torch.float32, "path": torch.float32, "turns": torch.float32, "value": torch.float64}
CHUNK, PATIENCE, MOST = 25, 50, 2000  # trees added at a time; stop this many trees after the best; at most
FOLDS = 3  # the number of trees is chosen by 3-fold cross-validation on the training split
CHUNK_ELEMENTS = 1 << 22  # rows x trees x nodes per forward chunk: about 16 MB a float32 intermediate
SHARED_FROM = 1_000_000  # values (rows x columns) from which the fit's OpenMP threads are the run's, not one


def _booster(discrete: bool, seed: int, trees: int, held_out: bool) -> Any:
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    except ImportError:
        raise UserError("model: gbm is fitted by scikit-learn: pip install 'sw2[data]'") from None
    kind = HistGradientBoostingClassifier if discrete else HistGradientBoostingRegressor
    return kind(
        learning_rate=0.1, max_iter=trees, max_leaf_nodes=31, max_depth=None, min_samples_leaf=20,
        categorical_features=None, early_stopping=held_out, scoring="loss", n_iter_no_change=MOST + 1,
        warm_start=held_out, random_state=seed,
    )  # fmt: skip


def _threads(x: np.ndarray) -> int:
    """The fit's OpenMP threads: one for a small table (each tree's histograms are too little work to share: on
    300 rows 2 threads took 1.7-20x as long as one here, the most where another process held a core), else the
    run's torch thread count (what the pre-flight's probe chose under the machine's load)."""
    return 1 if x.size < SHARED_FROM else torch.get_num_threads()


def two_logits(raw: torch.Tensor) -> torch.Tensor:
    """A binary booster's one log-odds per row (rows x 1) as two logits whose softmax is the same."""
    return torch.cat([-raw / 2, raw / 2], -1)


def _folds(y: np.ndarray, seed: int, discrete: bool) -> np.ndarray:
    """Each row's fold: shuffled, and for classes dealt out in turn within each class (every class of 2 or more
    rows is in every fold's training part)."""
    order = np.random.default_rng(seed).permutation(len(y))
    if discrete:
        order = order[np.argsort(y[order], kind="stable")]
    fold = np.empty(len(y), np.int64)
    fold[order] = np.arange(len(y)) % FOLDS
    return fold


def chosen_trees(x: np.ndarray, y: np.ndarray, discrete: bool, seed: int) -> int:
    """The number of trees whose mean held-out loss over the folds is lowest: every fold's trees grown `CHUNK`
    at a time (warm-started, each tree's held-out loss recorded) while that mean still fell within the last
    `PATIENCE` trees."""
    fold, folds = _folds(y, seed, discrete), []
    for k in range(FOLDS):
        inside, held = fold != k, fold == k
        if discrete:  # a label the fold's training part lacks cannot be scored on its held-out part
            held &= np.isin(y, y[inside])
        if held.any() and len(np.unique(y[inside])) >= (2 if discrete else 1):
            folds.append((_booster(discrete, seed, 0, held_out=True), inside, held))
    best, grown = 1, 0
    while folds:
        for booster, inside, held in folds:
            booster.set_params(max_iter=booster.max_iter + CHUNK)
            booster.fit(x[inside], y[inside], X_val=x[held], y_val=y[held])
        curves = [-np.asarray(b.validation_score_) for b, _, _ in folds]  # the loss before any tree, then after each
        common = min(len(c) for c in curves) - 1
        best = max(1, int(np.argmin(np.mean([c[: common + 1] for c in curves], 0))))
        if common - best >= PATIENCE or common >= MOST or common == grown:  # grown no further: no split left
            break
        grown = common
    return best


def paths(feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray, value: np.ndarray) -> dict:
    """Trees given as node arrays (trees x nodes, the root at 0, a leaf its own child) in the forward's form:
    per tree its split nodes' `feature` and `threshold` (float32, rounded down: a float32 input is <= it exactly
    when it is <= the float64 one), per leaf its `path` (+1 where it lies left of a split, -1 right, 0 neither),
    its `turns` (how many of its path's splits go left; unreachable for padding) and `value`."""
    trees = []
    for t in range(len(left)):
        splits, leaves, stack = [], [], [(0, [])]
        while stack:
            node, way = stack.pop()
            if left[t, node] == node:
                leaves.append((node, way))
                continue
            splits.append(node)
            stack += [(right[t, node], [*way, (node, -1)]), (left[t, node], [*way, (node, 1)])]
        trees.append((splits, leaves))
    n_split = max(1, max(len(s) for s, _ in trees))
    n_leaf = max(len(lv) for _, lv in trees)
    out = {
        "feature": np.zeros((len(trees), n_split), np.int64),
        "threshold": np.full((len(trees), n_split), np.inf, np.float32),
        "path": np.zeros((len(trees), n_leaf, n_split), np.float32),
        "turns": np.full((len(trees), n_leaf), n_split + 1, np.float32),  # padding: never reached
        "value": np.zeros((len(trees), n_leaf), np.float64),
    }
    for t, (splits, leaves) in enumerate(trees):
        at = {node: i for i, node in enumerate(splits)}
        thr = threshold[t, splits].astype(np.float64)
        low = thr.astype(np.float32)
        low = np.where(low > thr, np.nextafter(low, np.float32(-np.inf)), low)
        out["feature"][t, : len(splits)], out["threshold"][t, : len(splits)] = feature[t, splits], low
        for i, (node, way) in enumerate(leaves):
            out["value"][t, i], out["turns"][t, i] = value[t, node], sum(d > 0 for _, d in way)
            for split, d in way:
                out["path"][t, i, at[split]] = d
    return out


@MODELS.register("gbm")
class GBM(Model):
    options = GBMOptions
    direct = True

    def __init__(self, n_num: int, vocab_sizes: list[int], n_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_out = n_out
        for name in BUFFERS:  # sized by the fit, or by the state dict a bundle loads
            self.register_buffer(name, torch.zeros(0, 0, dtype=DTYPES.get(name, torch.long)))
        with warnings.catch_warnings():  # no input columns to weigh: a head of bias only
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.head = nn.Linear(0, n_out)  # its bias: the trees' starting score

    def _load_from_state_dict(self, state: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        if prefix + "left" in state:  # a bundle of an earlier sw2: trees as node arrays
            nodes = {k: state.pop(prefix + k).numpy() for k in ("feature", "threshold", "left", "right", "value")}
            state.pop(prefix + "depth", None)
            state.update({prefix + k: torch.from_numpy(v) for k, v in paths(**nodes).items()})
        for name in BUFFERS:  # take the saved trees' sizes
            if prefix + name in state:
                setattr(self, name, torch.empty_like(state[prefix + name]))
        super()._load_from_state_dict(state, prefix, *args, **kwargs)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([batch[k].to(torch.float32) for k in ("num", "cat") if k in batch], 1)
        trees, leaves, splits = self.path.shape
        rows = max(1, CHUNK_ELEMENTS // max(1, trees * max(leaves, splits)))
        exporting = torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if exporting or len(x) <= rows:
            raw = self._raw(x)
        else:  # in chunks of rows: the intermediates grow with rows x trees x nodes
            raw = torch.cat([self._raw(part) for part in x.split(rows)])
        return (two_logits(raw) if self.n_out == 2 else raw) + self.head.bias

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        """The trees' summed leaf values per output (rows x outputs, float32)."""
        left = (x.T[self.feature] <= self.threshold[..., None]).to(torch.float32)  # trees x splits x rows
        agree = torch.bmm(self.path, left) == self.turns[..., None]  # trees x leaves x rows: the leaf reached
        leaf = torch.bmm(self.value[:, None, :], agree.to(torch.float64))[:, 0]  # trees x rows
        outputs = F.one_hot(self.column.flatten(), 1 if self.n_out == 2 else self.n_out).to(leaf.dtype)
        return (leaf.T @ outputs).to(torch.float32)  # each tree's leaf added to its output

    def fit_directly(self, train: Any, discrete: bool, seed: int) -> dict[str, Any]:
        from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

        x, y = self._matrix(train.inputs), train.target.numpy()
        with threadpool_limits(_threads(x), user_api="openmp"):  # its predictions too: one row at 2 threads
            best = chosen_trees(x, y, discrete, seed)  # took 2 s where another process held a core
            booster = _booster(discrete, seed, best, held_out=False).fit(x, y)
            first = self._sklearn_raw(booster, x[:1])
        self._read_trees(booster)
        with torch.no_grad():  # the starting score: what scikit-learn predicts beyond the trees' sum
            self.head.bias.zero_()
            self.head.bias.copy_(first - self(train.take(np.arange(1)).inputs)[0])
        return {"trees": booster.n_iter_, "folds": FOLDS, "leaves_at_most": 31}

    @staticmethod
    def _matrix(inputs: dict[str, torch.Tensor]) -> np.ndarray:
        parts = [inputs[k].to(torch.float32) for k in ("num", "cat") if k in inputs]
        return torch.cat(parts, 1).numpy()

    def _sklearn_raw(self, booster: Any, x: np.ndarray) -> torch.Tensor:
        """scikit-learn's raw score for one row, as this model's outputs."""
        raw = booster.decision_function(x) if hasattr(booster, "classes_") else booster.predict(x)
        raw = torch.as_tensor(np.asarray(raw, dtype=np.float64)).reshape(-1)
        return (two_logits(raw) if self.n_out == 2 else raw).to(torch.float32)

    def _read_trees(self, booster: Any) -> None:
        """Every tree (one per output and iteration; shrinkage is in its leaf values) in the forward's form, from
        the booster's node records (scikit-learn's `_predictors`: the arrays its own predict walks)."""
        found = [(p.nodes, k) for stage in booster._predictors for k, p in enumerate(stage)]
        width = max(len(nodes) for nodes, _ in found)
        arrays = {n: np.zeros((len(found), width), np.float64 if n in ("threshold", "value") else np.int64)
                  for n in ("feature", "threshold", "left", "right", "value")}  # fmt: skip
        for i, (nodes, _) in enumerate(found):
            n, own, leaf = len(nodes), np.arange(len(nodes)), nodes["is_leaf"].astype(bool)
            arrays["feature"][i, :n] = np.where(leaf, 0, nodes["feature_idx"])
            arrays["threshold"][i, :n] = np.where(leaf, 0.0, nodes["num_threshold"])
            arrays["left"][i, :n] = np.where(leaf, own, nodes["left"])
            arrays["right"][i, :n] = np.where(leaf, own, nodes["right"])
            arrays["value"][i, :n] = nodes["value"]
        state = {**paths(**arrays), "column": np.array([[k] for _, k in found], np.int64)}
        for name, a in state.items():
            setattr(self, name, torch.from_numpy(a))

    @staticmethod
    def configure(spec: GBMOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        return table_inputs("gbm", encoder)
