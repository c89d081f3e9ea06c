"""A text file for a language model (task: generate_text): split in order, tokenised, cut into windows.

The file is split by position, never shuffled: train is the first part, then val, then test (the last
`split.val` and `split.test` shares, so tinyshakespeare's "first 90% / last 10%" is val: 0.1, test: 0).
The tokenizer is fitted on the train part only: `char` (one token per character) or byte-level BPE
(HF tokenizers, lossless: decode(encode(s)) == s for any string). A window is `max_tokens` inputs and the
same tokens shifted by one as targets; windows are strided views of one token tensor, so overlapping
training windows cost no memory.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sw2.data.dataset import TensorSet
from sw2.data.sources import resolve
from sw2.data.text import load_tokenizer, tokenizers_module
from sw2.errors import UserError
from sw2.spec import Spec


@dataclass
class Corpus:
    """The language model's encoder: its tokenizer and context length; plain JSON in the bundle."""

    task: str
    tokenizer: str  # "char" state: {"chars": [...]}; "bpe": the HF tokenizer's JSON
    kind: str  # char | bpe
    block: int  # the context: tokens the model sees

    default_model = "gpt"

    @classmethod
    def fit(cls, text: str, kind: str, vocab_size: int, block: int) -> Corpus:
        if kind == "char":
            return cls("generate_text", json.dumps({"chars": sorted(set(text))}), kind, block)
        tk = tokenizers_module()
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = tk.Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
        return cls("generate_text", tok.to_str(), kind, block)

    @property
    def chars(self) -> list[str]:
        return json.loads(self.tokenizer)["chars"]

    @property
    def vocab_size(self) -> int:
        return len(self.chars) if self.kind == "char" else load_tokenizer(self.tokenizer).get_vocab_size()

    @property
    def n_outputs(self) -> int:
        return self.vocab_size

    def encode(self, text: str, what: str = "text") -> list[int]:
        """Token ids of `text`; a character the vocabulary lacks is an error naming it (char tokenizer)."""
        if self.kind == "bpe":
            return load_tokenizer(self.tokenizer).encode(text).ids
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
            raise UserError(
                f"{what}: {len(unknown)} character(s) the model never saw in training: {shown}; "
                f"use only characters of the training text"
            )
        return [index[c] for c in text]

    def known(self, text: str) -> str:
        """`text` without the characters a char vocabulary lacks (byte-level BPE lacks none)."""
        if self.kind == "bpe":
            return text
        chars = set(self.chars)
        return "".join(c for c in text if c in chars)

    def decode(self, ids: list[int]) -> str:
        if self.kind == "bpe":
            return load_tokenizer(self.tokenizer).decode(ids)
        chars = self.chars
        return "".join(chars[i] for i in ids)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Corpus:
        return cls(**state)


def windows(ids: torch.Tensor, block: int, stride: int) -> TensorSet:
    """Windows of `block` tokens starting every `stride` tokens; targets are the next tokens (views)."""
    n = (len(ids) - 1 - block) // stride + 1
    if n < 1:
        return TensorSet({"tokens": ids[:0].reshape(0, block)}, ids[:0].reshape(0, block), np.zeros(0, np.int64))
    inputs = ids.as_strided((n, block), (stride, 1))
    target = ids[1:].as_strided((n, block), (stride, 1))
    return TensorSet({"tokens": inputs}, target, np.arange(n) * stride)


def unigram_counts(target: torch.Tensor, vocab: int) -> torch.Tensor:
    """How often each token is a target, over at most 4,096 windows spread over the text (windows may
    overlap, so all of them could be many times the text)."""
    rows = target[torch.linspace(0, len(target) - 1, min(len(target), 4096)).long()]
    return torch.bincount(rows.flatten(), minlength=vocab)


@dataclass
class Prepared:
    encoder: Corpus
    train: TensorSet
    val: TensorSet
    test: TensorSet
    report: dict[str, Any]
    fingerprint: str

    @property
    def raw_test(self) -> TensorSet:
        """What the model tests score: the test windows, or the validation windows where the split holds no
        test text (tinyshakespeare's "first 90% / last 10%")."""
        return self.test if len(self.test) else self.val

    @property
    def scored_val(self) -> TensorSet:
        return self.val


def read_text(path: Path) -> str:
    """A UTF-8 text file with Unix line ends; anything else is a one-line error naming the file."""
    if not path.is_file():
        raise UserError(f"{path}: a language model reads one text file; give the path of a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8") from None
    return text.replace("\r\n", "\n")


def split_text(spec: Spec, root: Path) -> tuple[str, dict[str, str]]:
    """The spec's text file, and its train / val / test parts (in order; train cut to `data.limit`)."""
    assert spec.data.path is not None
    text = read_text(resolve(root, spec.data.path))
    split = spec.data.split
    n_val, n_test = math.floor(len(text) * split.val), math.floor(len(text) * split.test)
    n_train = len(text) - n_val - n_test
    if spec.data.limit is not None:
        n_train = min(n_train, spec.data.limit)  # the first N characters
    parts = {
        "train": text[:n_train],
        "val": text[len(text) - n_val - n_test : len(text) - n_test],
        "test": text[len(text) - n_test :],
    }
    return text, parts


def text_fingerprint(train: str) -> str:
    return hashlib.sha256(train.encode()).hexdigest()


def prepare_corpus(spec: Spec, root: Path) -> Prepared:
    """The spec's text file as train/val/test token windows, with the tokenizer fitted on train."""
    text, parts = split_text(spec, root)
    block = spec.text.max_tokens or 128
    if len(parts["train"].strip()) == 0:
        raise UserError(f"{spec.data.path}: the training text is empty; give a file with text in it")
    encoder = Corpus.fit(parts["train"], spec.text.tokenizer, spec.text.vocab_size, block)
    kept = {k: encoder.known(v) for k, v in parts.items()}
    ids = {k: torch.tensor(encoder.encode(v), dtype=torch.long) for k, v in kept.items()}
    if len(ids["train"]) < block + 1:
        raise UserError(
            f"text.max_tokens: the training text has {len(ids['train'])} tokens, fewer than a window of "
            f"{block} + 1; use a smaller text.max_tokens or more text"
        )
    if parts["val"] and len(ids["val"]) < block + 1:
        raise UserError(
            f"data.split.val: the validation text has {len(ids['val'])} tokens, fewer than a window of {block} + 1;"
            f" use a larger split.val or a smaller text.max_tokens"
        )
    report = {
        "source": f"text file {spec.data.path} ({len(text):,} characters)",
        "characters": {k: len(v) for k, v in kept.items()},  # those the tokens hold
        "tokens": {k: len(v) for k, v in ids.items()},
        "vocab_size": encoder.vocab_size,
        "tokenizer": encoder.kind,
        # val/test characters train never had (char tokenizer): left out, not scored
        "dropped_unknown_characters": {k: len(parts[k]) - len(v) for k, v in kept.items()},
    }
    stride = spec.text.stride or block
    return Prepared(
        encoder,
        windows(ids["train"], block, stride),
        windows(ids["val"], block, block),
        windows(ids["test"], block, block),
        report,
        text_fingerprint(parts["train"]),
    )
