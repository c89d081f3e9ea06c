"""Encoders fitted on the training split only; their state is plain JSON saved in the bundle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from sw2.data import text as text_tokens
from sw2.data.dates import DATE_PARTS, date_features, days_since_1970, parse_dates
from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.spec import TextSpec

if TYPE_CHECKING:
    from sw2.data.columns import ColumnKind

UNKNOWN = "<unk>"


def plain(v: Any) -> Any:
    """numpy scalar -> plain Python, for JSON."""
    return v.item() if isinstance(v, np.generic) else v


def looks_like_text(col: pd.Series) -> bool:
    """A column of free text rather than categories: mostly distinct values of several words each (in a script
    written without spaces, such as Chinese, two characters count as a word of six letters)."""
    strs = col.dropna().astype(str)
    if len(strs) < 20 or pd.api.types.is_numeric_dtype(col):
        return False
    unspaced = strs.str.count(text_tokens.UNSPACED_CHARS)
    words = (strs.str.split().str.len() + unspaced / 2).mean()
    return strs.nunique() >= 0.5 * len(strs) and words >= 5 and (strs.str.len() + 2 * unspaced).mean() >= 25


def _numeric(col: pd.Series, name: str, strict: bool) -> pd.Series | None:
    """The column as floats (+-inf made missing, as training does), or None if it is not numeric. With
    `strict`, a stray non-number is an error."""
    values = _parse_numeric(col, name, strict)
    return None if values is None else values.mask(np.isinf(values.to_numpy()))


def _parse_numeric(col: pd.Series, name: str, strict: bool) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    parsed = pd.to_numeric(col, errors="coerce")
    bad = parsed.isna() & col.notna()
    present = int(col.notna().sum())
    if not bad.any():
        return parsed.astype(float)
    if strict or (present and 1 - bad.sum() / present >= 0.9):
        pos = bad.to_numpy().nonzero()[0][0]
        row = col.index[pos] + 1 if isinstance(col.index[pos], int | np.integer) else pos + 1
        raise UserError(
            f"column '{name}': value {col.iloc[pos]!r} (row {row}) is not a number; fix it, or declare the "
            f"column as category under inputs:"
        )
    return None


def _stats(values: pd.Series) -> dict[str, float]:
    """What standardising a numeric feature needs: the median that fills a missing value, then mean and std."""
    median = float(values.median()) if values.notna().any() else 0.0
    filled = values.fillna(median)
    return {"median": median, "mean": float(filled.mean()), "std": float(filled.std(ddof=0)) or 1.0}


def _date_stats(col: pd.Series, name: str, judged: ColumnKind | None = None) -> list[dict[str, Any]]:
    """The numeric features of a date column (sw2.data.dates.DATE_PARTS), each with the format that parsed the
    column and the train's first date (the origin of elapsed days); the values as `judged` parsed them where
    it did (sw2.data.columns: the same rows), else parsed here."""
    given = judged.dates if judged is not None else None
    if given is not None and judged is not None and judged.date_format and given.index.equals(col.index):
        parsed, fmt = given, judged.date_format
    else:
        parsed, fmt = parse_dates(col)
    if parsed.notna().sum() < 0.5 * col.notna().sum():
        example = col.dropna().astype(str).iloc[0] if col.notna().any() else ""
        raise UserError(
            f"column '{name}': most values (e.g. {example!r}) are not dates; declare it as category or number under "
            "inputs:, or fix the values"
        )
    origin = days_since_1970(parsed)
    parts = date_features(parsed, origin)
    return [{"name": name, "date": part, "format": fmt, "origin": origin, **_stats(parts[part])} for part in DATE_PARTS]


@dataclass
class Encoder:
    """Turns Examples into model tensors; `fit` learns everything from train, `to_json` saves it."""

    target_codec: Any  # the task's encoding of the target (sw2.tasks.target.TargetCodec): `encode`, `n_outputs`
    numeric: list[dict[str, Any]] = field(default_factory=list)  # name, median, mean, std (+ a date's part)
    categories: list[dict[str, Any]] = field(default_factory=list)  # name, vocab
    image_shape: list[int] | None = None  # C, H, W
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    text_columns: list[str] = field(default_factory=list)  # joined with [SEP] into one token sequence
    tokenizer: str | None = None  # the HF tokenizer's JSON
    max_tokens: int = 128
    columns: list[dict[str, str]] = field(default_factory=list)  # every column's kind and why (sw2.data.columns)

    # ---- fitting -----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        ex: Examples,
        target_codec: Any,
        columns: Sequence[ColumnKind],
        text: TextSpec | None = None,
        whole_text: bool = False,
    ) -> Encoder:
        """Everything learnt from the training examples `ex` beside `target_codec` (what the task learnt of
        their target), reading each column as `columns` says (sw2.data.columns.column_kinds: ids and ignored
        columns are left out); `whole_text`: the model reads every token, so texts are cut only where the spec's
        text.max_tokens says (default: at the longest training text)."""
        enc = cls(target_codec=target_codec)
        if ex.images is not None:
            imgs = torch.from_numpy(ex.images[:10000]).float()
            enc.image_shape = list(ex.images.shape[1:])
            enc.image_mean = imgs.mean(dim=(0, 2, 3)).tolist()
            enc.image_std = imgs.std(dim=(0, 2, 3)).clamp_min(1.0).tolist()
            return enc
        assert ex.frame is not None
        frame = ex.frame
        enc.columns = [k.to_json() for k in columns]
        judged = {k.name: k for k in columns}
        for k in enc.columns:
            name, kind = k["name"], k["kind"]
            col = frame[name]
            if kind in ("id", "ignored"):
                continue
            if kind == "text":
                enc.text_columns.append(name)
            elif kind == "date":
                enc.numeric += _date_stats(col, name, judged.get(name))
            else:  # a number (declared: every value must parse), or a category
                declared = k["reason"].startswith("inputs:")
                values = None if kind == "category" else _numeric(col, name, strict=declared)
                if values is None:
                    vocab = sorted(col.fillna("missing").astype(str).unique())
                    enc.categories.append({"name": name, "vocab": [UNKNOWN, *vocab]})
                else:
                    enc.numeric.append({"name": name, **_stats(values)})
        if not enc.numeric and not enc.categories and not enc.text_columns:
            out = [f"'{k['name']}' ({k['kind']})" for k in enc.columns]
            if out:
                raise UserError(
                    f"inputs: every column is left out: {', '.join(out[:8])}; keep one by naming it under inputs: "
                    "(e.g. {column: number})"
                )
            raise UserError("inputs: no input columns besides the target; add feature columns to the data")
        if enc.text_columns:
            text = text or TextSpec()
            first, rest = enc._texts(frame)
            enc.tokenizer = text_tokens.train_tokenizer(first + (rest or []), text)
            longest = text_tokens.longest(enc.tokenizer, first, rest) if whole_text and not text.max_tokens else 0
            enc.max_tokens = text.max_tokens or max(longest, 128)
        return enc

    def _texts(self, frame: pd.DataFrame) -> tuple[list[str], list[str] | None]:
        """The first text column, and the others joined with [SEP] (None if there is only one)."""
        cols = [frame[c].fillna("").astype(str) for c in self.text_columns]
        if len(cols) == 1:
            return cols[0].tolist(), None
        rest = cols[1]
        for c in cols[2:]:
            rest = rest + " [SEP] " + c
        return cols[0].tolist(), rest.tolist()

    # the target's fields, as the task's codec holds them (None / 0 / 1 where it has none)
    @property
    def classes(self) -> list[Any] | None:
        return getattr(self.target_codec, "classes", None)

    @property
    def class_counts(self) -> list[int] | None:
        return getattr(self.target_codec, "class_counts", None)

    @property
    def target_mean(self) -> float:
        return getattr(self.target_codec, "target_mean", 0.0)

    @property
    def target_std(self) -> float:
        return getattr(self.target_codec, "target_std", 1.0)

    # ---- transforming ------------------------------------------------------------------------
    @property
    def default_model(self) -> str:
        """What `model: auto` becomes: convnet for images, a TF-IDF bag of words for text (on the text benchmarks
        it beat the rnn, at a tenth of the time), mlp for tables (with trees and a linear model beside it:
        sw2.models.candidates)."""
        return "convnet" if self.image_shape is not None else "bag" if self.text_columns else "mlp"

    @property
    def n_outputs(self) -> int:
        return self.target_codec.n_outputs

    def inputs(self, ex: Examples) -> dict[str, torch.Tensor]:
        if self.image_shape is not None:
            if ex.images is None:
                raise UserError("this model takes images; give image files or an image folder")
            if list(ex.images.shape[1:]) != self.image_shape:
                raise UserError(
                    f"images are {list(ex.images.shape[1:])} (C, H, W) but the model takes "
                    f"{self.image_shape}; give images of that size"
                )
            return {"image": torch.from_numpy(np.ascontiguousarray(ex.images))}
        frame = ex.frame
        if frame is None:
            raise UserError("this model takes table rows; give a CSV/Parquet file")
        out: dict[str, torch.Tensor] = {}
        need = [c["name"] for c in self.numeric + self.categories] + self.text_columns
        absent = [c for c in need if c not in frame.columns]
        if absent:
            raise UserError(f"column '{absent[0]}' is missing from the data; the model needs {', '.join(need)}")
        if self.numeric:
            cols, dates = [], {}
            for c in self.numeric:
                if "date" in c:  # one of a date column's features: the column parsed once
                    if c["name"] not in dates:
                        dates[c["name"]] = date_features(parse_dates(frame[c["name"]], c["format"])[0], c["origin"])
                    v = dates[c["name"]][c["date"]]
                else:
                    v = _numeric(frame[c["name"]], c["name"], strict=True)
                assert v is not None
                cols.append(((v.fillna(c["median"]) - c["mean"]) / c["std"]).to_numpy(np.float32))
            out["num"] = torch.from_numpy(np.stack(cols, axis=1))
        if self.categories:
            cols = []
            for c in self.categories:
                index = {v: i for i, v in enumerate(c["vocab"])}
                strs = frame[c["name"]].fillna("missing").astype(str)
                cols.append(strs.map(lambda s, index=index: index.get(s, 0)).to_numpy(np.int64))
            out["cat"] = torch.from_numpy(np.stack(cols, axis=1))
        if self.text_columns:
            assert self.tokenizer is not None
            first, rest = self._texts(frame)
            out["text"] = text_tokens.token_ids(self.tokenizer, first, self.max_tokens, rest)
        return out

    def target(self, y: np.ndarray) -> torch.Tensor:
        """The encoded target, as the task encodes it (e.g. class index, -1 for a class unseen in train)."""
        return self.target_codec.encode(y)

    # ---- persistence -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "target_codec"}
        return {"target": self.target_codec.to_json(), **state}

    @classmethod
    def from_json(cls, state: dict[str, Any], target_codec: Any) -> Encoder:
        """The encoder saved by `to_json` (without its "target", which the task reads into `target_codec`)."""
        return cls(target_codec=target_codec, **{k: v for k, v in state.items() if k != "target"})
