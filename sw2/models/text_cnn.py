"""`textcnn`: Kim (2014)'s convolutional sentence classifier, from scratch on token ids: word embeddings,
parallel 1-D convolutions of a few widths, each filter's largest response over the text (max-pooling over
time), dropout and a linear head. Each layer is one call at any length, so it is fast at batch 1 on a CPU,
where an RNN steps token by token: a student for distillation when latency matters (`train.distill`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.encode import Encoder
from sw2.model_options import TextCNNOptions
from sw2.models.base import Model, exporting
from sw2.models.text import Side, text_kwargs, trimmed
from sw2.plugins import MODELS


@MODELS.register("textcnn")
class TextCNN(Model):
    """Embeddings -> one Conv1d per width -> ReLU -> max over the real positions -> dropout -> head."""

    options = TextCNNOptions

    def __init__(
        self,
        vocab: int,
        n_out: int,
        n_num: int = 0,
        vocab_sizes: list[int] | None = None,
        max_tokens: int = 128,
        dim: int = 128,
        filters: int = 100,
        kernels: list[int] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.kernels = list(kernels or [3, 4, 5])
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, k) for k in self.kernels)
        self.side = Side(n_num, vocab_sizes or [])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(filters * len(self.kernels) + self.side.width, n_out)
        self._fused: tuple[torch.Tensor, torch.Tensor] | None = None
        self._fused_key: tuple[tuple[int, int, int], ...] | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = trimmed(batch["text"])
        # every window that starts on a real token, whatever the batch's longest text: its tail reads padding
        # (zero vectors), so a text's outputs do not depend on the texts batched with it
        tail = max(self.kernels) - 1
        ids, mask = F.pad(ids, (0, tail)), F.pad(mask, (0, tail))
        x = self.drop(self.embed(ids))  # batch x tokens x dim
        if exporting():  # one Conv1d per width: the operators every runtime has
            h = torch.cat([conv(x.transpose(1, 2))[..., : ids.shape[1] - tail] for conv in self.convs], 1)
        else:  # every width at once, as one matrix product over the windows (CPU conv1d is slow at batch 1)
            weight, bias = self.fused()
            windows = x.unfold(1, tail + 1, 1).flatten(2)  # batch x starts x (dim * widest window)
            h = torch.addmm(bias, windows.flatten(0, 1), weight).view(len(ids), -1, len(bias)).transpose(1, 2)
        # ReLU >= 0: the windows that start on padding, set to 0, never win the max
        pooled = h.relu().masked_fill(~mask[:, None, : h.shape[2]], 0.0).amax(2)
        return self.head(self.drop(self.side(batch, pooled)))

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All widths' filters as one ((dim * widest) x filters) matrix, narrower windows' missing taps 0, and
        their biases. At inference it is kept between calls while the weights are unchanged (in-place updates,
        loads and moves change their version or storage)."""
        if torch.is_grad_enabled():
            return self._fuse()
        key = tuple((c.weight._version, c.weight.data_ptr(), c.bias._version) for c in self.convs)
        if self._fused_key != key:
            self._fused, self._fused_key = self._fuse(), key
        return self._fused

    def _fuse(self) -> tuple[torch.Tensor, torch.Tensor]:
        widest = max(self.kernels)
        weight = torch.cat([F.pad(c.weight, (0, widest - c.weight.shape[2])) for c in self.convs])
        return weight.flatten(1).T.contiguous(), torch.cat([c.bias for c in self.convs])

    @staticmethod
    def configure(spec: TextCNNOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        widths = spec.widths or [128, 100]
        return {**text_kwargs(spec, encoder), "dim": widths[0], "filters": widths[-1], "kernels": spec.kernels}
