"""A linear probe on the encoded inputs: the recipe's simplest baseline, and the evidence the input-independent
check needs before it blames the labels.

A data-hungry model (a recurrent net on a few hundred long texts) can memorise its training rows and still do
no better than zeroed inputs on held-out ones, so that alone does not show that the labels are shuffled. A
ridge regression on the inputs as they are (numbers, pixels) and on bags of hashed ids (categories, tokens),
fitted on the training rows, either finds signal on the held-out rows (the labels are fine; the model needs
more data or regularisation) or finds none either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sw2.data.dataset import TensorSet


@dataclass
class Probe:
    """The probe's held-out score beside what predicting without the inputs scores."""

    metric: str  # accuracy, or R² for a numeric target
    score: float
    chance: float  # the train-majority class's share of the held-out rows, or the R² of the train mean
    margin: float  # 2.5 standard errors of the score under no signal

    @property
    def found(self) -> bool:
        return self.score > self.chance + self.margin

    def __str__(self) -> str:
        return f"held-out {self.metric} {self.score:.3f} against {self.chance:.3f} without the inputs"


def _bag(keys: torch.Tensor, buckets: int) -> torch.Tensor:
    """Counts of each row's keys, hashed into `buckets`."""
    return torch.zeros(len(keys), buckets, dtype=torch.double).scatter_add_(
        1, keys.remainder(buckets), torch.ones(keys.shape, dtype=torch.double)
    )


def features(train: TensorSet, held: TensorSet, buckets: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held) features, one block per input, centred on train and of about unit length per row:
    numbers and pixels standardised; ids as a TF-IDF-weighted bag, hashed into `buckets`: of (column, id)
    pairs for category columns, of ids for tokens (where they stand does not count)."""
    blocks = []
    for name, v in train.inputs.items():
        x, xh = v.flatten(1), held.inputs[name].flatten(1)
        if v.is_floating_point() or v.dtype == torch.uint8:
            x, xh = x.double(), xh.double()
            mean, std = x.mean(0), x.std(0)
            keep = std > 1e-9
            scale = std[keep] * math.sqrt(max(int(keep.sum()), 1))
            blocks.append(((x[:, keep] - mean[keep]) / scale, (xh[:, keep] - mean[keep]) / scale))
            continue
        column = torch.arange(x.shape[1]) * 7919 if name == "cat" else 0
        bag, bag_h = (_bag(ids.long() + column, buckets) for ids in (x, xh))
        idf = torch.log((1 + len(bag)) / (1 + (bag > 0).sum(0))) + 1
        bag, bag_h = (torch.nn.functional.normalize(b.log1p() * idf, dim=1) for b in (bag, bag_h))
        blocks.append((bag - bag.mean(0), bag_h - bag.mean(0)))
    return torch.cat([x for x, _ in blocks], 1), torch.cat([xh for _, xh in blocks], 1)


def linear_probe(train: TensorSet, held: TensorSet, rows: int = 2000) -> Probe | None:
    """Ridge regression from `features` to the target (one-hot classes, or the number) on at most `rows`
    training rows, scored on at most `rows` of `held`, its ridge strength the best of five; None for a target
    per token."""
    if train.target.dim() != 1 or not len(train) or not len(held):
        return None
    train, held = (
        ts.take(torch.randperm(len(ts), generator=torch.Generator().manual_seed(0))[:rows].numpy())
        for ts in (train, held)
    )
    x, xh = features(train, held)
    classes = train.target.dtype == torch.long
    n_out = int(max(train.target.max(), held.target.max())) + 1 if classes else 1
    y = torch.nn.functional.one_hot(train.target, n_out).double() if classes else train.target.double()[:, None]
    base = y.mean(0)
    dual = x.shape[1] > len(x)  # as many unknowns as rows, where there are more features than rows
    gram, rhs = (x @ x.T, y - base) if dual else (x.T @ x, x.T @ (y - base))
    best = -math.inf
    for alpha in (0.01, 0.1, 1.0, 10.0, 100.0):
        coef = torch.linalg.solve(gram + alpha * torch.eye(len(gram), dtype=gram.dtype), rhs)
        pred = xh @ (x.T @ coef if dual else coef) + base
        best = max(best, _score(pred, held.target, classes))
    n = len(held)
    if classes:
        chance = float((held.target == int(base.argmax())).double().mean())
        margin = 2.5 * math.sqrt(max(chance * (1 - chance), 1 / n) / n)
        return Probe("accuracy", best, chance, margin)
    return Probe("R²", best, _score(base.expand(n, 1), held.target, False), 2.5 / math.sqrt(n))


def _score(pred: torch.Tensor, target: torch.Tensor, classes: bool) -> float:
    if classes:
        return float((pred.argmax(1) == target).double().mean())
    y = target.double()
    return float(1 - ((pred[:, 0] - y) ** 2).sum() / ((y - y.mean()) ** 2).sum().clamp_min(1e-12))
