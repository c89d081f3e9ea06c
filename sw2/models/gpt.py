"""Language models over token ids (task: generate_text): each maps `{"tokens": B x T}` to next-token
logits B x T x V, and `step(ids, state) -> (logits, state)` continues a sequence for sampling.

- `gpt`: a nanoGPT-style decoder: pre-LayerNorm blocks of causal self-attention (PyTorch's scaled dot
  product attention) and a GELU MLP, tied input/output embeddings. Positions are rotary (RoPE): the
  attention scores depend only on how far apart two tokens are, so the key/value cache can slide over a
  window of `block` tokens without re-encoding positions.
- `charrnn`: an embedding, a stacked GRU or LSTM (`model.cell`) and a linear head (Karpathy's char-rnn);
  its hidden state is the cache.

Past the context, the cache slides: the oldest token's keys and values drop out, so each layer still
looks back `block` tokens, but the kept keys were computed when their tokens saw an earlier window.
Within the context, sampling with the cache gives exactly what recomputing gives; beyond it, the two
differ (recomputing crops the text to the last `block` tokens and starts afresh).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.corpus import Corpus
from sw2.errors import UserError
from sw2.model_options import CharRNNOptions, GPTOptions
from sw2.models.base import Model
from sw2.plugins import MODELS


def rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of x (B, heads, T, head_dim) at integer `positions` (T,)."""
    half = x.shape[-1] // 2
    inv_freq = 10_000 ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


@dataclass
class KVCache:
    """Rotated keys and values of the last `block` tokens, per layer; `position` counts all tokens seen."""

    block: int
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    position: int = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.keys):
            self.keys.append(k[:, :, -self.block :])
            self.values.append(v[:, :, -self.block :])
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)[:, :, -self.block :]
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)[:, :, -self.block :]
        return self.keys[layer], self.values[layer]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (y.view(b, t, self.heads, c // self.heads).transpose(1, 2) for y in self.qkv(x).split(c, dim=2))
        q, k = rotate(q, positions), rotate(k, positions)
        causal = True
        if cache is not None:
            cached = layer < len(cache.keys)
            if cached and t > 1:
                raise ValueError("a cache continues one token at a time after the prompt")
            causal = not cached and t > 1  # one new token attends to everything cached
            k, v = cache.extend(layer, k, v)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=causal)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), positions, cache, layer))
        return x + self.mlp(self.ln2(x))


@MODELS.register("gpt")
class GPT(Model):
    options = GPTOptions

    def __init__(
        self, vocab: int, block: int, dim: int = 256, layers: int = 4, heads: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.block = block
        self.embed = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        self.head.weight = self.embed.weight  # tied, as in GPT-2 and nanoGPT
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / (2 * layers) ** 0.5)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def run(self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = self.drop(self.embed(ids))
        for i, blk in enumerate(self.blocks):
            x = blk(x, positions, cache, i)
        return self.head(self.norm(x))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["tokens"].long()
        return self.run(ids, torch.arange(ids.shape[1], device=ids.device))

    def step(self, ids: torch.Tensor, state: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """Logits after `ids` (B x T: the prompt, then one token at a time), reusing the cached keys."""
        state = state if state is not None else KVCache(self.block)
        ids = ids[:, -self.block :]
        positions = torch.arange(state.position, state.position + ids.shape[1], device=ids.device)
        logits = self.run(ids, positions, state)
        state.position += ids.shape[1]
        return logits[:, -1], state

    @staticmethod
    def configure(spec: GPTOptions, corpus: Corpus, n_train: int) -> dict[str, Any]:
        dim, heads = (spec.widths or [256])[0], spec.heads or 4
        if dim % heads or (dim // heads) % 2:
            raise UserError(f"model: widths[0] = {dim} must be a multiple of heads = {heads} with an even quotient")
        return {
            "vocab": corpus.vocab_size,
            "block": corpus.block,
            "dim": dim,
            "layers": spec.layers or 4,
            "heads": heads,
        }


@MODELS.register("charrnn")
class CharRNN(Model):
    options = CharRNNOptions

    def __init__(
        self, vocab: int, block: int, dim: int = 512, layers: int = 2, cell: str = "lstm", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.block = block
        self.embed = nn.Embedding(vocab, dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(dim, dim, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h, _ = self.rnn(self.drop(self.embed(batch["tokens"].long())))
        return self.head(self.drop(h))

    def step(self, ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Logits after `ids`; the recurrent state carries the whole past."""
        h, state = self.rnn(self.embed(ids), state)
        return self.head(h[:, -1]), state

    @staticmethod
    def configure(spec: CharRNNOptions, corpus: Corpus, n_train: int) -> dict[str, Any]:
        dim = (spec.widths or [512])[0]
        return {
            "vocab": corpus.vocab_size,
            "block": corpus.block,
            "dim": dim,
            "layers": spec.layers or 2,
            "cell": spec.cell,
        }
