"""Active learning: which unlabeled examples a classifier would learn most from if they were labelled next.

Uncertainty first: `margin` (the top two classes' probabilities closest; Scheffer et al., 2001) or `entropy` of
the predicted distribution, over the whole pool; then diversity: among the `CANDIDATES` x n most uncertain, a
greedy k-center pick on the network's features (the input of its last layer), so that a batch does not spend
its labels on near-duplicates. `coreset` is the k-center pick alone over the whole pool (Sener & Savarese,
2018). Features: the head's input where the network calls its head, else its pooled features, else the logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

STRATEGIES = ("margin", "entropy", "coreset")
CANDIDATES = 10  # uncertain candidates per pick that the diversity step chooses among
CHUNK = 512  # pool examples through the network at a time


def outputs_and_features(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's raw outputs on `inputs` and its last features (see the module's docstring), in chunks."""
    caught: list[torch.Tensor] = []
    hooks = []
    head, pool = getattr(model, "head", None), getattr(model, "pool", None)
    if isinstance(head, nn.Module):
        hooks.append(head.register_forward_pre_hook(lambda _m, args: caught.append(args[0].detach())))
    if isinstance(pool, nn.Module):
        hooks.append(pool.register_forward_hook(lambda _m, _a, out: caught.append(out.detach())))
    outs, feats = [], []
    was = model.training
    model.eval()
    try:
        n = len(next(iter(inputs.values())))
        for i in range(0, n, CHUNK):
            caught.clear()
            with torch.no_grad():
                out = model({k: v[i : i + CHUNK] for k, v in inputs.items()}).float()
            outs.append(out)
            feats.append(caught[0].float().flatten(1) if caught else out)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return torch.cat(outs), torch.cat(feats)


def uncertainty(probs: torch.Tensor, strategy: str) -> torch.Tensor:
    """Per example: how unsure the model is (higher: label it sooner)."""
    if strategy == "margin":
        top2 = probs.topk(min(2, probs.shape[1]), dim=1).values
        return -(top2[:, 0] - (top2[:, 1] if top2.shape[1] > 1 else 0))
    return -(probs * probs.clamp_min(1e-12).log()).sum(1)


def k_center(features: torch.Tensor, n: int, first: int = 0) -> list[int]:
    """Greedy k-center: start at `first`, then each pick the example farthest from those picked."""
    x = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    picked = [first]
    dist = (x - x[first]).square().sum(1)
    for _ in range(n - 1):
        i = int(dist.argmax())
        picked.append(i)
        dist = torch.minimum(dist, (x - x[i]).square().sum(1))
    return picked


def suggest(
    outputs: torch.Tensor, features: torch.Tensor, n: int, strategy: str, to_probs: Callable[[torch.Tensor], Any]
) -> tuple[list[int], torch.Tensor]:
    """The `n` pool positions to label next, in order, and every example's uncertainty score."""
    probs = to_probs(outputs)
    score = uncertainty(probs, "entropy" if strategy == "coreset" else strategy)
    if strategy == "coreset":
        return k_center(features, n, int(score.argmax())), score
    pool = score.argsort(descending=True)[: min(len(score), CANDIDATES * n)]
    within = k_center(features[pool], n, 0)  # the most uncertain first, then the farthest of the uncertain
    return [int(pool[i]) for i in within], score


def ranked_rows(order: list[int], score: torch.Tensor, probs: torch.Tensor, ids: np.ndarray, classes: list) -> list:
    """The suggestion as rows: rank, the example's id, its uncertainty, the model's guess and its probability."""
    top = probs.max(1)
    return [{"rank": r + 1, "id": ids[i], "uncertainty": float(score[i]), "predicted": classes[int(top.indices[i])],
             "probability": float(top.values[i])} for r, i in enumerate(order)]  # fmt: skip
