"""Dynamic data pruning in InfoBatch's form (Qin et al., ICLR 2024): skip some well-learned examples.

Each example's score is its training loss when last seen. At the start of an epoch, an example whose score
is below the mean score is left out with probability `rate`; the well-learned examples that stay count
1 / (1 - rate) times, so an epoch's summed loss is in expectation the full data's. Examples not seen yet
have no score and always stay. Unlike InfoBatch, which takes fewer steps, a run takes as many steps as
without pruning (or trains to its time budget): the steps an epoch saves go to later epochs, which see the
examples not learned yet more often. Each step's loss is scaled by the share of examples kept, so that its
expected gradient stays the full data's mean and the lr means what it means without pruning.
"""

from __future__ import annotations

import torch


class EasyPruner:
    def __init__(self, n: int, rate: float, device: torch.device) -> None:
        self.rate = rate
        self.scores = torch.full((n,), float("nan"), device=device)  # the last training loss of each example
        self.weights = torch.ones(n, device=device)  # each example's weight in the loss this epoch
        self.share = 1.0  # the share of examples this epoch keeps

    def epoch(self, perm: torch.Tensor, gen: torch.Generator, prune: bool, block: int) -> torch.Tensor:
        """The examples of `perm` (a CPU permutation of all of them) this epoch trains on, in that order, and
        their weights. `block` (batch x accumulation steps) divides the number kept; an epoch that would
        keep fewer uses all the data. The draws from `gen` are the same whether or not it prunes."""
        coin = torch.rand(len(perm), generator=gen)
        scores = self.scores.cpu()
        easy = scores < scores.nanmean()  # unseen (nan) examples are never easy
        kept = perm[~(easy[perm] & (coin < self.rate))]
        if not prune or len(kept) < block:
            self.weights.fill_(1.0)
            self.share = 1.0
            return perm
        self.weights.copy_(torch.where(easy, 1 / (1 - self.rate), 1.0))
        self.share = len(kept) / len(perm)  # before the trim, which drops examples at random
        return kept[: len(kept) - len(kept) % block]

    def loss(self, losses: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The batch loss from its examples' losses (`idx` on the scores' device); records them as scores."""
        self.scores[idx] = losses.detach().float()
        return (losses * self.weights[idx]).mean() * self.share
