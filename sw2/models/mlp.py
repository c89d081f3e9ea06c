"""An MLP for tables: standardised numeric columns plus an embedding per category column."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.models.base import ChannelGroup, Model
from sw2.models.convnet import ACTIVATIONS
from sw2.plugins import MODELS
from sw2.spec import ModelOptions


class MLPOptions(ModelOptions):
    """mlp: standardised numbers and embedded categories through dense layers, the default for tables."""

    widths: list[int] | None = Field(None, description="units per layer (default: two of 128, or 256 from 20,000 rows)")
    embed_dim: int | None = Field(None, ge=1, description="embedding size for category columns (default 8)")
    activation: Literal["gelu", "relu"] = "gelu"


@MODELS.register("mlp")
class MLP(Model):
    options = MLPOptions

    def __init__(
        self,
        n_num: int,
        vocab_sizes: list[int],
        n_out: int,
        widths: list[int],
        embed_dim: int,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(v, min(embed_dim, (v + 1) // 2 + 1)) for v in vocab_sizes)
        width = n_num + sum(e.embedding_dim for e in self.embeds)
        layers: list[nn.Module] = []
        for w in widths:
            layers += [nn.Linear(width, w), nn.BatchNorm1d(w), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [batch["num"]] if "num" in batch else []
        if "cat" in batch:
            parts += [e(batch["cat"][:, i]) for i, e in enumerate(self.embeds)]
        return self.head(self.body(torch.cat(parts, dim=1)))

    def channel_groups(self) -> list[ChannelGroup]:
        """Each hidden layer's units: its rows and bias, its norm's entries, and the next layer's (or the head's)
        columns; layer i counts `widths[i]`."""
        linears = [i for i, m in enumerate(self.body) if isinstance(m, nn.Linear)]
        groups = []
        for k, i in enumerate(linears):
            made = [(f"body.{i}.{n}", 0) for n in ("weight", "bias")]
            made += [(f"body.{i + 1}.{n}", 0) for n in ("weight", "bias", "running_mean", "running_var")]
            read = [(f"body.{linears[k + 1]}.weight", 1)] if k + 1 < len(linears) else [("head.weight", 1)]
            groups.append(ChannelGroup(k, made, read, self.body[i + 2]))
        return groups

    @staticmethod
    def configure(spec: MLPOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        if encoder.text_columns:
            raise UserError(
                f"model: mlp cannot read the text column(s) {', '.join(encoder.text_columns)}; use a text model "
                "(bag, rnn, transformer, minilm) or declare the column as category under inputs:"
            )
        width = 128 if n_train < 20000 else 256
        return {
            "n_num": len(encoder.numeric),
            "vocab_sizes": [len(c["vocab"]) for c in encoder.categories],
            "n_out": encoder.n_outputs,
            "widths": spec.widths or [width, width],
            "embed_dim": spec.embed_dim or 8,
            "activation": spec.activation,
        }
