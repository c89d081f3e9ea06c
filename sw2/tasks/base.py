"""Tasks by registry: how a task computes its loss, its validation metric and its output bias."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sw2.data.corpus import unigram_counts
from sw2.registry import Registry


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the validation metric; higher is better
    chunk: int | None = None  # validate this many examples at a time (None: all at once); loss and metric
    # must then be means over examples, so that the chunks' mean is the whole's

    def loss(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return self.example_losses(out, y, label_smoothing).mean()

    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """The loss of each example (B values): what `loss` averages."""
        raise NotImplementedError

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        raise NotImplementedError

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        """The bias that makes the untrained model predict the training prior."""
        raise NotImplementedError


TASKS: Registry[Task] = Registry("task")


class Classify(Task):
    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(out.float(), y, label_smoothing=label_smoothing, reduction="none")

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        return (out.argmax(1) == y).float().mean().item()

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        prior = torch.bincount(y, minlength=n_out).float().clamp_min(1) / len(y)
        return prior.log() - prior.log().mean()


class Regress(Task):
    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.mse_loss(out.float().squeeze(1), y, reduction="none")

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """R² on the standardised target."""
        resid = ((out.float().squeeze(1) - y) ** 2).sum()
        total = ((y - y.mean()) ** 2).sum().clamp_min(1e-12)
        return (1 - resid / total).item()

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        return y.float().mean().reshape(1)


class GenerateText(Task):
    """Next-token prediction: outputs B x T x V, targets B x T; the loss is nats per token."""

    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Nats per token of each window."""
        flat = F.cross_entropy(
            out.float().flatten(0, 1), y.flatten(), label_smoothing=label_smoothing, reduction="none"
        )
        return flat.view(y.shape).mean(1)

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """Next-token accuracy."""
        return (out.argmax(-1) == y).float().mean().item()

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        """The unigram log-frequencies of the training tokens (of at most 4,096 windows: they may overlap)."""
        counts = unigram_counts(y, n_out).float()
        prior = counts.clamp_min(1) / counts.sum()
        return prior.log() - prior.log().mean()


TASKS.register("classify")(Classify("classify", "accuracy"))
TASKS.register("regress")(Regress("regress", "r2"))
TASKS.register("generate_text")(GenerateText("generate_text", "accuracy", chunk=32))
