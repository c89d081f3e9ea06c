"""Sampling from a language model: temperature, top-k, and a cache so each new token costs the same.

With `cache=True` the model's `step` keeps what it computed (a GPT's keys and values, an RNN's state)
and each new token runs through the model alone. Without it, every token re-reads the context (the last
`block` tokens) from scratch, as nanoGPT's `generate` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

MIN_TEMPERATURE = 0.01  # lower (but 0: greedy) divides the logits into overflow


def options_error(tokens: int, temperature: float, top_k: int | None, seed: int) -> str | None:
    """What is wrong with these sampling options, or None."""
    if tokens < 1:
        return "tokens: give at least 1"
    if not math.isfinite(temperature) or (temperature != 0 and not temperature >= MIN_TEMPERATURE):
        return f"temperature: give a finite number >= {MIN_TEMPERATURE} (or 0: greedy)"
    if top_k is not None and top_k < 1:
        return "top-k: give at least 1"
    if not 0 <= seed < 2**64:
        return "seed: give a whole number from 0 to 2**64 - 1"
    return None


def pick(logits: torch.Tensor, temperature: float, top_k: int | None, gen: torch.Generator) -> torch.Tensor:
    """The next token (B x 1) from logits (B x V): greedy at temperature 0, else sampled."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=gen)


@torch.no_grad()
def stream(
    model: nn.Module,
    prompt: list[int],
    tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    cache: bool = True,
) -> Iterator[int]:
    """The new token ids after `prompt`, one at a time as each is sampled (what a server streams). The model
    reads the prompt's last `block` tokens, its context: a longer prompt costs no more than that."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = torch.tensor([prompt[-model.block :]], dtype=torch.long, device=device)
    state = None
    if cache:
        logits, state = model.step(ids, None)
    for i in range(tokens):
        if not cache:
            logits = model({"tokens": ids[:, -model.block :]})[:, -1]
        nxt = pick(logits, temperature, top_k, gen)
        yield int(nxt)
        ids = torch.cat([ids, nxt], dim=1)
        if cache and i < tokens - 1:
            logits, state = model.step(nxt, state)
