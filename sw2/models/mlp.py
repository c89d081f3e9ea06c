"""An MLP for tables: an embedding per numeric column (periodic, Gorishniy et al. 2022, "On Embeddings for
Numerical Features in Tabular Deep Learning": sin/cos of trained frequencies, then a per-column linear layer
and ReLU, the `PLR` embedding that let MLPs match gradient-boosted trees there) or the standardised value
itself, plus an embedding per category column, through dense layers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.model_options import MLPOptions
from sw2.models.base import ChannelGroup, Model
from sw2.models.convnet import ACTIVATIONS
from sw2.plugins import MODELS


def table_inputs(name: str, encoder: Encoder) -> dict[str, Any]:
    """The sizes a model of numeric and category columns is built with (the mlp, gbm, linear); images or text
    columns are refused with a one-line error."""
    if getattr(encoder, "image_shape", None) is not None:
        raise UserError(f"model: {name} reads table columns, and the data are images; use convnet or mobilenet")
    if encoder.text_columns:
        raise UserError(
            f"model: {name} cannot read the text column(s) {', '.join(encoder.text_columns)}; use a text model "
            "(bag, rnn, transformer, minilm) or declare the column as category under inputs:"
        )
    return {
        "n_num": len(encoder.numeric),
        "vocab_sizes": [len(c["vocab"]) for c in encoder.categories],
        "n_out": encoder.n_outputs,
    }


class Periodic(nn.Module):
    """PLR: x -> ReLU(Linear_j([sin(2 pi f_j x_j), cos(2 pi f_j x_j)])) per column j, k frequencies f_j drawn
    from N(0, scale) and trained (rtdl_num_embeddings' PeriodicEmbeddings defaults: 48 frequencies, scale 0.01,
    24 dimensions)."""

    def __init__(self, columns: int, dim: int = 24, frequencies: int = 48, scale: float = 0.01) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(columns, frequencies) * scale)
        self.weight = nn.Parameter(torch.empty(columns, 2 * frequencies, dim))
        self.bias = nn.Parameter(torch.empty(columns, dim))
        bound = (2 * frequencies) ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.width = columns * dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angle = 2 * torch.pi * self.frequencies * x.unsqueeze(-1)  # rows x columns x frequencies
        waves = torch.cat([torch.sin(angle), torch.cos(angle)], -1)
        return torch.relu(torch.einsum("bcf,cfd->bcd", waves, self.weight) + self.bias).flatten(1)


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
        numeric: str = "plain",
    ) -> None:
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(v, min(embed_dim, (v + 1) // 2 + 1)) for v in vocab_sizes)
        self.periodic = Periodic(n_num) if numeric == "periodic" and n_num else None
        width = self.periodic.width if self.periodic is not None else n_num
        width += sum(e.embedding_dim for e in self.embeds)
        layers: list[nn.Module] = []
        for w in widths:
            layers += [nn.Linear(width, w), nn.BatchNorm1d(w), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if "num" in batch:
            parts.append(self.periodic(batch["num"]) if self.periodic is not None else batch["num"])
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
        width = 128 if n_train < 20000 else 256
        return {
            **table_inputs("mlp", encoder),
            "widths": spec.widths or [width, width],
            "embed_dim": spec.embed_dim or 8,
            "activation": spec.activation,
            "numeric": spec.numeric,
        }
