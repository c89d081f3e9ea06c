"""Dynamic data pruning in InfoBatch's form (Qin et al., ICLR 2024): skip some well-learned examples.

Each example's score is its training loss when last seen. At the start of an epoch, an example whose score
is below the mean score is left out with probability `rate`; the well-learned examples that stay count
1 / (1 - rate) times, so an epoch's summed loss is in expectation the full data's, in fewer steps: as in
InfoBatch, each step's loss is the mean over its batch, so while pruning a step's expected gradient is the
full data's mean divided by the share of examples kept (at most 1 / (1 - rate)). With Muon, the conv kernels'
steps do not depend on that scale. Unlike InfoBatch, which takes fewer steps, a run takes as many steps as
without pruning (or trains to its time budget): the steps an epoch saves go to later epochs, which see the
examples not learned yet more often.

Chosen on CIFAR-10's val split: per-step losses rescaled to the full data's mean lost InfoBatch's gain
(docs/benchmarks.md).
"""

from __future__ import annotations

import torch


class EasyPruner:
    def __init__(self, n: int, rate: float, device: torch.device) -> None:
        self.rate = rate
        self.scores = torch.full((n,), float("nan"), device=device)  # the last training loss of each example
        self.weights = torch.ones(n, device=device)  # each example's weight in the loss this epoch

    def epoch(self, perm: torch.Tensor, gen: torch.Generator, prune: bool, block: int) -> torch.Tensor:
        """The examples of `perm` (a CPU permutation of all of them) this epoch trains on, in that order; sets
        their weights. `block` (batch x accumulation steps) divides the number kept; an epoch that would
        keep fewer uses all the data. The draws from `gen` are the same whether or not it prunes."""
        coin = torch.rand(len(perm), generator=gen)
        scores = self.scores.cpu()
        easy = scores < scores.nanmean()  # unseen (nan) examples are never easy
        kept = perm[~(easy[perm] & (coin < self.rate))]
        if not prune or len(kept) < block:
            self.weights.fill_(1.0)
            return perm
        self.weights.copy_(torch.where(easy, 1 / (1 - self.rate), 1.0))
        return kept[: len(kept) - len(kept) % block]  # the trimmed tail: examples at random

    def loss(self, losses: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The batch loss from its examples' losses (`idx` on the scores' device); records them as scores."""
        self.scores[idx] = losses.detach().float()
        return (losses * self.weights[idx]).mean()
