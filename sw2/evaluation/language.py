"""Language-model metrics: nats per token, perplexity, nats and bits per character, next-token accuracy."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sw2.data.corpus import unigram_counts
from sw2.data.dataset import TensorSet
from sw2.engine import validate

if TYPE_CHECKING:
    from sw2.tasks import Task


def unigram(train: TensorSet, vocab: int) -> torch.Tensor:
    """Log-probabilities of each token in the training text (add-one smoothed): the baseline model."""
    counts = unigram_counts(train.target, vocab).float() + 1
    return (counts / counts.sum()).log()


def language_metrics(
    model: nn.Module, task: Task, windows: TensorSet, chars_per_token: float, prior: torch.Tensor | None = None
) -> dict[str, Any]:
    """Metrics over every token of `windows`; `chars_per_token` of that text turns tokens into characters.
    With `prior` (unigram log-probabilities), the unigram baseline beside them."""
    loss, accuracy = validate(model, task, windows)
    out = _scores(loss, accuracy, chars_per_token)
    if prior is not None:
        base = -prior[windows.target.flatten()].mean().item()
        best = prior.argmax()
        out["baseline"] = {
            "name": "unigram",
            **_scores(base, (windows.target == best).float().mean().item(), chars_per_token),
        }
    return {**out, "tokens_scored": windows.target.numel(), "chars_per_token": round(chars_per_token, 4)}


def _scores(loss: float, accuracy: float, chars_per_token: float) -> dict[str, float]:
    per_char = loss / chars_per_token
    return {
        "nats_per_token": round(loss, 4),
        "perplexity": round(math.exp(loss), 3),
        "nats_per_char": round(per_char, 4),
        "bits_per_char": round(per_char / math.log(2), 4),
        "accuracy": round(accuracy, 4),  # the most likely next token is the right one
    }
