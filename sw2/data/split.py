"""Deterministic splits from a seed: at random (stratified), in time order (`split.by`) or by whole groups
(`split.group`); and the folds of cross-validation in the same three ways.

Time order: rows are sorted by the column's date or number; the latest share is test, the share before it val, the
earliest rows train. Rows of one date never straddle a boundary: a boundary that falls inside a run of equal dates
moves past it (the run joins the earlier part), or before it where that would leave the later part empty and not
the earlier ones; a column of one date cannot be split in time. Groups: the groups are dealt in a seeded order,
each to the part (test or val) furthest from its share of rows where at least half the group fits there, else to
train, so the shares hold approximately; cross-validation deals its folds so, each group to the lightest fold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sw2 import log
from sw2.data.dates import parse_dates
from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.spec import SplitSpec

Folds = list[tuple[np.ndarray, np.ndarray]]  # (indices trained on, indices scored) per fold


def split_indices(y: np.ndarray, fractions: list[float], seed: int, stratify: bool) -> list[np.ndarray]:
    """Split range(len(y)) into len(fractions)+1 index arrays: the fractions, then the rest.

    With `stratify`, each class is split in the same proportions (every class keeps at least one
    example in the rest part).
    """
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for members in groups:
        members = rng.permutation(members)
        start = 0
        for i, frac in enumerate(fractions):
            n = int(round(frac * len(members)))
            n = min(n, len(members) - start - 1) if stratify else n
            parts[i].append(members[start : start + max(n, 0)])
            start += max(n, 0)
        parts[-1].append(members[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]  # no rows: empty parts


def fold_ids(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A stratified fold number 0..k-1 for each example: each class is dealt round the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(y), np.int64)
    start = 0
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        folds[members] = (np.arange(len(members)) + start) % k
        start += len(members)  # the next class starts where this one ended, so the folds stay level
    return folds


# ---- the columns a split reads ----------------------------------------------------------------------
def column(ex: Examples, name: str, field: str) -> pd.Series:
    """The values of column `name` of `ex` (the field naming it in messages)."""
    if ex.frame is None:
        raise UserError(f"{field}: '{name}' names a column, and this data has none (images); remove {field}")
    if name not in ex.frame.columns:
        cols = ", ".join(map(str, ex.frame.columns[:20]))
        raise UserError(f"{field}: no column '{name}' in the data (the target cannot split); columns are {cols}")
    return ex.frame[name].reset_index(drop=True)


def time_keys(values: pd.Series, name: str) -> np.ndarray:
    """A sortable float per row from a column of dates or numbers; NaN where the row has none."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float).to_numpy()
    dated = pd.api.types.is_datetime64_any_dtype(values)
    text = values if dated else values.astype("string").str.strip()
    if not dated:
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().sum() == text.notna().sum():
            return numbers.astype(float).to_numpy()
    parsed = parse_dates(text)[0]  # as the date features read them: one format for the column, in UTC
    bad = text.notna() & parsed.isna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"data.split.by: column '{name}' holds {int(bad.sum())} values that are neither dates nor numbers "
            f"(e.g. {str(text.iloc[first])[:40]!r}); split by a date or number column, or fix those values"
        )
    stamps = parsed.dt.tz_localize(None).astype("datetime64[ns]")
    return np.where(stamps.isna(), np.nan, stamps.astype("int64").astype(float))


# ---- parts ------------------------------------------------------------------------------------------
def _tie_free(keys: np.ndarray, start: int, end: int) -> int:
    """`start` moved out of a run of equal `keys` (sorted): past it, or before it where past it is `end` (the
    later part would be empty) unless before it is 0 (the earlier parts would be)."""
    if start <= 0 or start >= end or keys[start - 1] != keys[start]:
        return start
    after = int(np.searchsorted(keys, keys[start], side="right"))
    before = int(np.searchsorted(keys, keys[start], side="left"))
    return after if after < end or before == 0 else before


def ordered_indices(keys: np.ndarray, fractions: list[float]) -> list[np.ndarray]:
    """As split_indices, in time order: part 0 the latest fractions[0] of rows, part 1 the share before it, ...,
    the rest the earliest; no run of equal keys straddles two parts."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    parts, end = [], len(keys)
    for frac in fractions:
        start = _tie_free(ranked, max(end - int(round(frac * len(keys))), 0), end) if frac > 0 else end
        parts.append(np.sort(order[start:end]))
        end = start
    return [*parts, np.sort(order[:end])]


def group_indices(groups: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """As split_indices, by whole groups dealt in a seeded order (`deal`): the rest keeps what the parts of
    `fractions` leave."""
    codes, uniques = pd.factorize(pd.Series(groups), use_na_sentinel=False)
    owner = deal(np.bincount(codes, minlength=len(uniques)), [frac * len(codes) for frac in fractions], seed, True)
    return [np.flatnonzero(owner[codes] == p) for p in range(len(fractions) + 1)]


def deal(sizes: np.ndarray, targets: list[float], seed: int, rest: bool) -> np.ndarray:
    """The part of each group (of `sizes` rows), the groups dealt in a seeded order: each to the part furthest
    from its share (the room left below its target of rows, over the target) of those where at least half the
    group fits in the room left; one that fits nowhere goes to the rest (part len(targets)). Without `rest`
    (the folds of cross-validation) every group fits: each goes to the lightest fold."""
    share = np.asarray(targets, float)
    room = share.copy()
    owner = np.full(len(sizes), len(targets))
    for g in np.random.default_rng(seed).permutation(len(sizes)):
        fits = (share > 0) & (room >= sizes[g] / 2 if rest else True)
        if not fits.any():
            continue
        left = np.divide(room, share, out=np.full(len(share), -np.inf), where=fits)
        owner[g] = int(np.argmax(left))
        room[owner[g]] -= sizes[g]
    return owner


def carve_indices(ex: Examples, split: SplitSpec, fractions: list[float], stratify: bool) -> list[np.ndarray]:
    """Index arrays of `ex` for len(fractions) + 1 parts as `split` says: the fractions (the latest rows for
    `by`; rows without a date count as the earliest), then the rest."""
    if split.by is not None:
        keys = time_keys(column(ex, split.by, "data.split.by"), split.by)
        if len(np.unique(keys[~np.isnan(keys)])) < 2:
            raise UserError(
                f"data.split.by: column '{split.by}' holds one value in every dated row, so no rows are later than "
                "others; split by a column whose dates differ, or remove data.split.by"
            )
        return ordered_indices(np.where(np.isnan(keys), -np.inf, keys), fractions)
    if split.group is not None:
        return group_indices(column(ex, split.group, "data.split.group").to_numpy(), fractions, split.seed)
    return split_indices(ex.target.astype(str), fractions, split.seed, stratify=stratify)


def carve(ex: Examples, split: SplitSpec, fractions: list[float], stratify: bool) -> list[Examples]:
    """`ex` cut into len(fractions) + 1 parts as `split` says (carve_indices); with `by`, rows without a date
    are left out first (logged)."""
    if split.by is not None:
        keys = time_keys(column(ex, split.by, "data.split.by"), split.by)
        dated = np.flatnonzero(~np.isnan(keys))
        if len(dated) < len(keys):
            log.warning(f"data.split.by: {len(keys) - len(dated)} rows have no '{split.by}' value and are left out")
            ex = ex.take(dated)
    if split.group is not None and column(ex, split.group, "data.split.group").nunique(dropna=False) < 2:
        raise UserError(f"data.split.group: column '{split.group}' holds one group; split by a column of groups")
    return [ex.take(p) for p in carve_indices(ex, split, fractions, stratify)]


def sample(ex: Examples, split: SplitSpec, n: int, stratify: bool) -> Examples:
    """`n` of the examples (data.limit): the latest n in time order (`by`), else a seeded (stratified) draw."""
    if split.by is not None:
        keys = time_keys(column(ex, split.by, "data.split.by"), split.by)
        return ex.take(np.sort(np.argsort(keys, kind="stable")[len(ex) - n :]))
    kept = split_indices(ex.target.astype(str), [n / len(ex)], split.seed, stratify=stratify)
    return ex.take(kept[0])


def not_inputs(ex: Examples, split: SplitSpec, named: str | dict[str, str]) -> Examples:
    """`ex` without the split's group column, which is not an input unless the spec's inputs (`named`) name it:
    a model that learnt the groups of training would meet none of them in val or test."""
    kept = isinstance(named, dict) and split.group in named
    if split.group is None or ex.frame is None or split.group not in ex.frame.columns or kept:
        return ex
    return Examples(ex.target, ex.frame.drop(columns=[split.group]), ex.images, ex.ids)


# ---- cross-validation folds --------------------------------------------------------------------------
def folds(ex: Examples, split: SplitSpec, k: int, stratify: bool) -> Folds:
    """k (trained on, scored) pairs of indices of `ex`, as `split` says: expanding windows in time order (fold
    i trains on the first i + 1 of k + 1 runs of rows and scores the next), whole groups, or stratified folds."""
    if split.by is not None:
        chunks = carve_indices(ex, split, [1 / (k + 1)] * k, stratify)[::-1]  # earliest first
        if any(len(c) == 0 for c in chunks):
            raise UserError(f"--cv {k}: '{split.by}' has too few distinct values for {k} time-ordered folds")
        return [(np.concatenate(chunks[: i + 1]), chunks[i + 1]) for i in range(k)]
    if split.group is not None:
        codes, uniques = pd.factorize(column(ex, split.group, "data.split.group"), use_na_sentinel=False)
        if len(uniques) < k:
            raise UserError(f"--cv {k}: '{split.group}' holds {len(uniques)} groups; give --cv {len(uniques)} or fewer")
        fold = deal(np.bincount(codes), [len(codes) / k] * k, split.seed, False)[codes]  # as group_indices deals
    elif stratify:
        fold = fold_ids(ex.target.astype(str), k, split.seed)
    else:
        fold = np.random.default_rng(split.seed).permutation(len(ex)) % k
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]
