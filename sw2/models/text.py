"""Text classifiers trained from scratch on token ids ([PAD] = 0, every sequence starts with [CLS]):

- `bag`: a TF-IDF-weighted bag of words (and hashed word pairs and character n-grams): a linear model, or
  fastText with a width;
- `rnn`: a bidirectional GRU/LSTM with attention pooling;
- `transformer`: a small pre-LayerNorm encoder with learned positions and masked mean pooling.

Each also reads numeric and category columns of the same row (`Side`), so a table with a text column
and other columns trains one model.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
import warnings
import zlib
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sw2.data.encode import Encoder
from sw2.data.text import BYTES, SPECIALS, UNSPACED_CHARS, load_tokenizer, vocab_size
from sw2.errors import UserError
from sw2.model_options import BagOptions, RNNOptions, TransformerOptions
from sw2.models.base import Model, exporting
from sw2.models.sparse_solve import solve
from sw2.plugins import MODELS
from sw2.spec import ModelOptions


def trimmed(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids cut to the batch's longest sequence, its mask): padding past it costs compute for nothing."""
    mask = ids != 0
    mask[:, 0] = True  # [CLS]: every sequence has it, so even an all-padding input has one position
    if exporting():  # the cut is data-dependent: an exported graph takes the runtime's trimmed ids as they are
        return ids, mask
    positions = torch.arange(ids.shape[1], device=ids.device)
    longest = int((mask * (positions + 1)).max()) if len(ids) else 1  # the last real token, wherever it is
    return ids[:, :longest], mask[:, :longest]


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


class Side(nn.Module):
    """The row's numeric columns and embedded category columns, beside the text."""

    def __init__(self, n_num: int, vocab_sizes: list[int], embed_dim: int = 8) -> None:
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(v, min(embed_dim, (v + 1) // 2 + 1)) for v in vocab_sizes)
        self.width = n_num + sum(e.embedding_dim for e in self.embeds)

    def forward(self, batch: dict[str, torch.Tensor], pooled: torch.Tensor) -> torch.Tensor:
        parts = [pooled] + ([batch["num"]] if "num" in batch else [])
        if "cat" in batch:
            parts += [e(batch["cat"][:, i]) for i, e in enumerate(self.embeds)]
        return torch.cat(parts, dim=1) if len(parts) > 1 else pooled


def text_kwargs(spec: ModelOptions, encoder: Encoder) -> dict[str, Any]:
    """What every text model needs to know from the encoder."""
    if encoder.tokenizer is None:
        raise UserError(f"model: {spec.name} reads text, and the data has no text column; use inputs: {{col: text}}")
    return {
        "vocab": vocab_size(encoder.tokenizer),
        "n_out": encoder.n_outputs,
        "n_num": len(encoder.numeric),
        "vocab_sizes": [len(c["vocab"]) for c in encoder.categories],
        "max_tokens": encoder.max_tokens,
    }


# hashed rows of word pairs and of character n-grams each (primes): a linear bag has two numbers a row and can
# afford few collisions (on Rotten Tomatoes 32k pair rows cost 3 points against exact pairs); an embedding
# bag (fastText) has `width` numbers a row
HASHED_ROWS = {"linear": 524_287, "embedding": 65_521}
LONGEST_WORD = 24  # characters of a word that give n-grams (a longer one: its first 24)
# tokens a bag gives no weight: the special tokens, and the bytes an unknown word is read as (as an [UNK] before)
NO_MEANING = frozenset(SPECIALS + BYTES)


def char_grams(token: str, shortest: int, longest: int) -> list[str]:
    """The character n-grams of one word, its edges marked by spaces (scikit-learn's char_wb); none for a
    character that is a word of its own (Chinese, kana, Thai, an emoji: sw2.data.text), whose n-grams would only
    repeat it (on Chinese reviews they cost 2 points of val accuracy)."""
    if not token or re.match(UNSPACED_CHARS, token) or unicodedata.category(token[0]) == "So":
        return []
    w = f" {token.removeprefix('##')[:LONGEST_WORD]} "
    return [w[i : i + n] for n in range(shortest, longest + 1) for i in range(len(w) - n + 1)]


@lru_cache(maxsize=4)
def char_table(tokenizer: str, shortest: int, longest: int, buckets: int) -> torch.Tensor:
    """Each vocabulary word's character n-grams hashed to 1..buckets-1, one row per token id, 0 = none (padding, and
    the special tokens' whole rows). Cached: `configure` reads its width, `init_from_encoder` copies it."""
    vocab = load_tokenizer(tokenizer).get_vocab()
    grams = {i: [zlib.crc32(g.encode()) % (buckets - 1) + 1 for g in char_grams(w, shortest, longest)]
             for w, i in vocab.items() if w not in NO_MEANING}  # fmt: skip
    table = np.zeros((len(vocab), max([1, *map(len, grams.values())])), np.int32)  # a slot even if no word has any
    for i, row in grams.items():
        table[i, : len(row)] = row
    return torch.from_numpy(table)


@MODELS.register("bag")
class Bag(Model):
    """A bag of words (with `ngrams: 2`, also hashed word pairs), each token weighted by its inverse
    document frequency on train, the row's token weights scaled to unit length (TF-IDF-like: a repeated
    word counts once per occurrence). With `chars`, each word also brings its character n-grams (hashed),
    weighted the same way and scaled to unit length as a second block (times the share of the row's words that
    have n-grams: a character of Chinese is a word of its own, without n-grams). Without a width the bag's rows are
    the class scores themselves (a linear model, zero at the start; `train.dropout` does not apply); with
    `widths: [d]` they are d-dimensional embeddings summed under the same weights, then dropout and a
    linear head (fastText)."""

    options = BagOptions

    def __init__(
        self,
        vocab: int,
        n_out: int,
        n_num: int = 0,
        vocab_sizes: list[int] | None = None,
        max_tokens: int = 128,
        dim: int = 0,
        ngrams: int = 1,
        buckets: int = 32_771,  # hashed word-pair rows (a prime)
        specials: list[int] | None = None,  # token ids that carry no meaning ([PAD], [CLS], ...): weight 0
        dropout: float = 0.0,
        weighting: str = "idf",
        min_df: int = 1,  # idf: features in fewer training rows weigh 0
        chars: list[int] | None = None,  # [shortest, longest] character n-gram length
        char_slots: int = 0,  # the most n-grams a word has (the width of the word -> n-gram table)
        char_buckets: int = 262_139,  # hashed character n-gram rows (a prime)
        solver: str = "sgd",  # lbfgs: fitted directly by scikit-learn (a linear bag without category columns)
    ) -> None:
        super().__init__()
        self.direct = solver == "lbfgs"
        self.vocab, self.dim, self.buckets = vocab, dim, buckets if ngrams > 1 else 0
        self.weighting, self.min_df, self.chars = weighting, min_df, tuple(chars) if chars else None
        self.char_start = vocab + self.buckets
        self.char_buckets = char_buckets if chars else 0
        rows = self.char_start + self.char_buckets
        self.bag = nn.EmbeddingBag(rows, dim or n_out, mode="sum")
        self.n_out = n_out
        self.register_buffer("idf", torch.ones(rows))
        self.idf[specials or [0]] = 0.0
        if chars:  # each word id's character n-gram rows (0 = none), filled from the tokenizer by init_from_encoder
            self.register_buffer("subwords", torch.zeros(vocab, char_slots, dtype=torch.int32))
        self.side = Side(n_num, vocab_sizes or [])
        self.drop = nn.Dropout(dropout)
        with warnings.catch_warnings():  # no width and no side columns: a head of bias only
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.head = nn.Linear(dim + self.side.width, n_out)
        if not dim:  # a linear model: every weight starts at zero
            nn.init.zeros_(self.bag.weight)
            nn.init.zeros_(self.head.weight)

    def blocks(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The row's token rows, one tensor per block (0 = none): words then hashed pairs; character n-grams."""
        f = ids
        if self.buckets:
            word = self.idf[: self.vocab][ids] > 0  # a real word, not padding or a special token
            pair = word[:, 1:] & word[:, :-1]
            hashed = (ids[:, :-1] * 1_000_003 + ids[:, 1:]) % (self.buckets - 1) + 1 + self.vocab
            f = torch.cat([ids, torch.where(pair, hashed, 0)], 1)
        return [f, self.subwords[ids].flatten(1).long()] if self.chars else [f]

    def gram_share(self, ids: torch.Tensor) -> torch.Tensor:
        """Each row's share of words that have character n-grams, the length of its n-gram block: 1 in scripts
        written with spaces; in Chinese, whose characters have none, the few Latin words and digits of a row
        weigh as little as their share (at unit length they cost 1.75 points of val accuracy on Chinese reviews)."""
        word = self.idf[: self.vocab][ids] > 0
        grams = word & (self.subwords[ids][..., 0] > 0)
        return (grams.sum(1) / word.sum(1).clamp_min(1)).unsqueeze(1)

    @torch.no_grad()
    def init_from_encoder(self, encoder: Encoder) -> None:
        """The word -> character n-gram table, from the tokenizer's vocabulary."""
        if not self.chars or encoder.tokenizer is None:
            return
        table = char_table(encoder.tokenizer, *self.chars, self.char_buckets)[: self.vocab]
        self.subwords.copy_(torch.where(table > 0, table + self.char_start, 0))

    def _document_counts(self, ids: torch.Tensor, target: torch.Tensor | None = None, classes: int = 1) -> torch.Tensor:
        """Rows containing each token (classes x tokens: per class of `target` if given)."""
        df = torch.zeros(classes, len(self.idf))
        labels = target.long() if target is not None else torch.zeros(len(ids), dtype=torch.long)
        rows = max(1, 2**22 // (ids.shape[1] * (2 + (self.subwords.shape[1] if self.chars else 0))))
        for chunk, y in zip(ids.split(rows), labels.split(rows)):
            for f in self.blocks(chunk):
                f, _ = f.sort(1)
                first = torch.cat([torch.ones_like(f[:, :1], dtype=torch.bool), f[:, 1:] != f[:, :-1]], 1)
                keep = first & (f > 0)
                where = (y[:, None] * len(self.idf) + f)[keep]
                df += torch.bincount(where, minlength=classes * len(self.idf)).view(classes, -1)
        return df

    @torch.no_grad()
    def init_from_data(self, inputs: dict[str, torch.Tensor]) -> None:
        """idf = ln((1 + n) / (1 + document frequency)) + 1 on the training rows (scikit-learn's smoothing); 0 for
        what fewer than `min_df` rows hold."""
        if self.weighting != "idf":
            return
        df = self._document_counts(inputs["text"])[0]
        kept = (self.idf > 0) & (df >= self.min_df)
        self.idf.copy_(torch.where(kept, torch.log((1 + len(inputs["text"])) / (1 + df)) + 1, 0.0))

    @torch.no_grad()
    def init_from_labels(self, inputs: dict[str, torch.Tensor], target: torch.Tensor) -> None:
        """nb: a token's weight is its largest |log-count ratio| between a class and the rest (NBSVM's r, one
        class against the others, with add-one smoothing), from the training rows that contain it."""
        if self.weighting != "nb":
            return
        df = self._document_counts(inputs["text"], target, self.n_out) + 1.0  # classes x tokens
        rest = df.sum(0, keepdim=True) - df + 1.0
        ratio = torch.log(df / df.sum(1, keepdim=True)) - torch.log(rest / rest.sum(1, keepdim=True))
        self.idf.copy_(torch.where(self.idf > 0, ratio.abs().amax(0), 0.0))

    def features(self, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each block's token rows and their weights: idf, the block scaled to its length (1 for words and pairs,
        the n-gram share for character n-grams); 0 = no token."""
        out = []
        for f, length in zip(self.blocks(ids), [1.0, self.gram_share(ids) if self.chars else 0.0]):
            w = self.idf[f]
            out.append((f, length * w / w.norm(dim=1, keepdim=True).clamp_min(1e-6)))
        return out

    def side_scale(self) -> float:
        """The row's other columns are divided by this: they weigh no more than the unit-length bag under a high lr."""
        return max(1.0, self.side.width) ** 0.5

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, ids = 0.0, trimmed(batch["text"])[0]
        for f, w in self.features(ids):
            if exporting():  # a fixed-shape graph: every slot, the empty ones at weight 0
                x = x + self.bag(f, per_sample_weights=w)
                continue
            keep = w != 0  # the bag's cost is its lookups: only the row's real tokens (a third of n-gram slots)
            counts = keep.sum(1)
            x = x + self.bag(f[keep], counts.cumsum(0) - counts, per_sample_weights=w[keep])
        if self.dim:
            return self.head(self.drop(self.side(batch, x)))
        return x + self.head(self.side(batch, x[:, :0]) / self.side_scale())

    def fit_directly(self, train: Any, discrete: bool, seed: int) -> dict[str, Any]:
        """solver lbfgs: the bag's features as a sparse matrix, solved by scikit-learn (sw2.models.sparse_solve)."""
        rows, used = self.design(train.inputs["text"])
        side = train.inputs["num"] / self.side_scale() if "num" in train.inputs else None
        coef, intercept, chose = solve(rows, side, train.target, discrete, self.n_out, seed)
        with torch.no_grad():
            self.bag.weight[used] = coef[:, : len(used)].T.to(self.bag.weight.dtype)
            self.head.weight.copy_(coef[:, len(used) :])
            self.head.bias.copy_(intercept)
        return chose

    @torch.no_grad()
    def design(self, text: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The rows' bag as a scipy CSR matrix over the features they hold, and those features' row ids."""
        from scipy import sparse

        r, c, v = [], [], []
        chunk = max(1, 2**22 // (text.shape[1] * (2 + (self.subwords.shape[1] if self.chars else 0))))
        for start in range(0, len(text), chunk):
            ids = trimmed(text[start : start + chunk])[0]
            for f, w in self.features(ids):
                keep = w != 0
                r.append((torch.arange(len(f)).unsqueeze(1) + start).expand_as(f)[keep])
                c.append(f[keep])
                v.append(w[keep])
        used, col = torch.cat(c).unique(return_inverse=True)
        matrix = sparse.csr_matrix((torch.cat(v).numpy(), (torch.cat(r).numpy(), col.numpy())), (len(text), len(used)))
        matrix.sum_duplicates()  # a token twice in a row counts twice, as in the EmbeddingBag's sum
        return matrix, used

    @staticmethod
    def configure(spec: BagOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        if spec.weighting == "nb" and not encoder.classes:
            raise UserError("model.weighting: nb weighs tokens by class and needs task: classify; use idf")
        solver = spec.solver
        if solver != "sgd" and (spec.widths or encoder.categories):
            why = "an embedding width (model.widths)" if spec.widths else "category columns beside the text"
            if solver == "lbfgs":
                raise UserError(f"model.solver: lbfgs solves a linear bag, and this one has {why}; use solver: sgd")
            solver = "sgd"
        if solver == "auto":
            solver = "lbfgs" if importlib.util.find_spec("sklearn") else "sgd"
        tok = load_tokenizer(encoder.tokenizer) if encoder.tokenizer else None
        specials = sorted(i for s in NO_MEANING if tok is not None and (i := tok.token_to_id(s)) is not None)
        chars = list(spec.chars) if spec.chars and encoder.tokenizer else None
        hashed = HASHED_ROWS["embedding" if spec.widths else "linear"]
        slots = char_table(encoder.tokenizer, *chars, hashed).shape[1] if chars else 0
        return {
            **text_kwargs(spec, encoder),
            "dim": (spec.widths or [0])[0],
            "ngrams": spec.ngrams,
            "buckets": hashed,
            "char_buckets": hashed,
            "specials": specials,
            "weighting": spec.weighting,
            "min_df": spec.min_df,
            "chars": chars,
            "char_slots": slots,
            "solver": solver,
        }


@MODELS.register("rnn")
class RNN(Model):
    options = RNNOptions

    def __init__(
        self,
        vocab: int,
        n_out: int,
        n_num: int = 0,
        vocab_sizes: list[int] | None = None,
        max_tokens: int = 128,
        dim: int = 128,
        hidden: int = 128,
        layers: int = 1,
        cell: str = "gru",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(dim, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout if layers > 1 else 0)
        self.score = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))
        self.side = Side(n_num, vocab_sizes or [])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden + self.side.width, n_out)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = trimmed(batch["text"])
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.drop(self.embed(ids)), lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=ids.shape[1])
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        pooled = (scores.softmax(1).unsqueeze(-1) * h).sum(1)  # attention pooling over the real tokens
        return self.head(self.drop(self.side(batch, pooled)))

    @staticmethod
    def configure(spec: RNNOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        widths = spec.widths or [128, 128]
        return {
            **text_kwargs(spec, encoder),
            "dim": widths[0],
            "hidden": widths[-1],
            "layers": spec.layers or 1,
            "cell": spec.cell,
        }


@MODELS.register("transformer")
class Transformer(Model):
    options = TransformerOptions

    def __init__(
        self,
        vocab: int,
        n_out: int,
        n_num: int = 0,
        vocab_sizes: list[int] | None = None,
        max_tokens: int = 128,
        dim: int = 128,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.position = nn.Embedding(max_tokens, dim)
        block = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.side = Side(n_num, vocab_sizes or [])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim + self.side.width, n_out)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = trimmed(batch["text"])
        x = self.embed(ids) + self.position(torch.arange(ids.shape[1], device=ids.device))
        h = self.norm(self.encoder(self.drop(x), src_key_padding_mask=~mask))
        return self.head(self.drop(self.side(batch, masked_mean(h, mask))))

    @staticmethod
    def configure(spec: TransformerOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        dim, heads = (spec.widths or [128])[0], spec.heads or 4
        if dim % heads:
            raise UserError(f"model: widths[0] = {dim} must be a multiple of heads = {heads}")
        return {
            **text_kwargs(spec, encoder),
            "dim": dim,
            "layers": spec.layers or 2,
            "heads": heads,
        }
