"""The data doctor: what an expert looks at before training (Karpathy's "become one with the data").

Class balance, the size of the train split, exact and near duplicates inside train and across train/test
(a perceptual hash confirmed by thumbnail pixels for images, a normalised hash for rows; rows repeated
across the split in a coarse table are expected, not leaked), a column that alone predicts the target (a
leak), constant columns, missing-value rates, +-inf made missing, and labels seen only in the test split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sw2.data.dataset import Prepared
from sw2.data.examples import Examples
from sw2.preflight.verdict import Verdict


def thumbnails(images: np.ndarray, grid: int = 16) -> np.ndarray:
    """Grey thumbnails, grid x grid cells (or the image itself if smaller), flattened: N x cells, 0..255."""
    n, c, h, w = images.shape
    size = (min(grid, h), min(grid, w))
    out = [
        F.adaptive_avg_pool2d(torch.from_numpy(images[i : i + 8192]).float().mean(1, keepdim=True), size)
        for i in range(0, n, 8192)  # bounded memory for large sets
    ]
    return torch.cat(out).flatten(1).numpy() if out else np.zeros((0, size[0] * size[1]), np.float32)


def perceptual_hashes(thumbs: np.ndarray) -> np.ndarray:
    """One uint64 per thumbnail: each cell reduced to its quartile among the thumbnail's cells (2 bits).
    Near-identical images (re-encoded, brightness or contrast changed) share it; so may merely similar
    ones, which `near_duplicates` then tells apart by pixels."""
    if not len(thumbs):
        return np.zeros(0, np.uint64)
    q = np.quantile(thumbs, [0.25, 0.5, 0.75], axis=1)[:, :, None]
    levels = (thumbs > q[0]).astype(np.uint8) + (thumbs > q[1]) + (thumbs > q[2])
    return pd.util.hash_array(np.array([r.tobytes() for r in levels], dtype=object))


def near_duplicates(
    ref: np.ndarray, h_ref: np.ndarray, ex: np.ndarray, h_ex: np.ndarray, same: bool, tol: float = 24.0
) -> np.ndarray:
    """Which thumbnails of `ex` have a near-identical one in `ref` (same hash, and no cell differing by more
    than `tol` of 255); with `same` (ex is ref), which repeat an earlier one. A boolean mask over `ex`."""
    buckets = pd.Series(h_ref).groupby(h_ref).indices if len(h_ref) else {}
    if same:  # only hashes that occur twice or more can repeat
        candidates = np.flatnonzero(pd.Series(h_ex).duplicated(keep=False).to_numpy())
    else:
        candidates = np.flatnonzero(np.isin(h_ex, h_ref))
    found = np.zeros(len(h_ex), bool)
    for i in candidates:
        members = buckets[h_ex[i]]
        if same:
            members = members[members < i]
        if len(members) and (np.abs(ref[members[-256:]] - ex[i]).max(1) <= tol).any():
            found[i] = True
    return found


def shifted_copies(train: np.ndarray, test: np.ndarray, shift: int = 1) -> np.ndarray:
    """Which test images are near-identical to a train image moved by 1..`shift` pixels each way (a moved copy
    has another perceptual hash): the train images' centre crops against each test image's crops at every
    offset. A boolean mask over `test`; all False for images too small for a crop to be telling."""
    h, w = train.shape[2:]
    ch, cw = h - 2 * shift, w - 2 * shift
    found = np.zeros(len(test), bool)
    if ch < 16 or cw < 16 or h > 64 or w > 64:  # large images: a 1-pixel shift keeps the perceptual hash
        return found
    a = thumbnails(train[:, :, shift : shift + ch, shift : shift + cw])
    ha = perceptual_hashes(a)
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            b = thumbnails(test[:, :, dy : dy + ch, dx : dx + cw])
            found |= near_duplicates(a, ha, b, perceptual_hashes(b), same=False)
    return found


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with numbers rounded to 4 significant digits and text lower-cased and trimmed."""
    norm = frame.copy()
    for col in norm.columns:
        s = norm[col]
        if pd.api.types.is_numeric_dtype(s):
            norm[col] = s.map(lambda v: float(f"{v:.4g}") if pd.notna(v) else v)
        else:
            norm[col] = s.astype(str).str.strip().str.lower()
    return norm


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A hash per row after normalising (`normalised`)."""
    return pd.util.hash_pandas_object(normalised(frame), index=False).to_numpy()


def coarse_table(frame: pd.DataFrame, repeats: int, across: float) -> str | None:
    """Why identical rows across train and test are expected here, or None if they are not.

    They are expected in a coarse table (few columns of few values, e.g. age, year and a few categories),
    where different records share every input: the share of new rows that match a train row by chance is
    estimated as 1 - exp(-n x the product over columns of the chance that two rows share a value), or as
    twice the share of train rows (`repeats` of them, exact duplicates included) repeating another's inputs.
    Not where a column is nearly unique per row (a measurement, free text): rows equal in it too are the same
    record; nor where the test repeats train (`across`, a share) far more often than chance explains."""
    n = len(frame)
    norm = normalised(frame)
    if not n or not len(norm.columns) or (norm.nunique() >= 0.5 * n).any():
        return None
    collide = np.prod([float((norm[c].value_counts(normalize=True, dropna=False) ** 2).sum()) for c in norm.columns])
    chance = max(1 - np.exp(-n * collide), 2 * repeats / (n + repeats))
    if chance < 0.01 or across > 3 * chance + 0.05:
        return None
    return (
        f"expected in a coarse table: no column is near-unique per row, and about {chance:.0%} of new rows match "
        "a train row by chance, so these are likely different records with the same inputs, not leaked ones"
    )


def near_duplicate_counts(train: Examples, test: Examples) -> tuple[int, int]:
    """(train examples repeating an earlier one, test examples repeating a train one), near-identical:
    images by thumbnail, rows by their normalised hash."""
    if train.images is not None:
        a, b = thumbnails(train.images), thumbnails(test.images)
        ha, hb = perceptual_hashes(a), perceptual_hashes(b)
        across = near_duplicates(a, ha, b, hb, same=False) | shifted_copies(train.images, test.images)
        return int(near_duplicates(a, ha, a, ha, same=True).sum()), int(across.sum())
    a, b = row_hashes(train.frame), row_hashes(test.frame)
    return int(pd.Series(a).duplicated().sum()), int(np.isin(b, a).sum())


def share(k: int, n: int) -> str:
    return f"{k} of {n} ({100 * k / max(n, 1):.1f}%)"


def class_balance(p: Prepared) -> Verdict:
    """Classes of one label per example: is the smallest a tenth of the largest or more?"""
    counts = p.encoder.class_counts or []
    classes = p.encoder.classes or []
    lo, hi = int(np.argmin(counts)), int(np.argmax(counts))
    if counts[lo] == counts[hi]:
        return Verdict("class balance", "PASS", f"all {len(counts)} classes have {counts[lo]} examples")
    ratio = counts[lo] / max(counts[hi], 1)
    msg = f"smallest class '{classes[lo]}' has {counts[lo]} examples, largest '{classes[hi]}' {counts[hi]}"
    if ratio < 0.1:
        return Verdict(
            "class balance", "WARN", msg + "; collect more of the rare class or weigh it (macro-F1 shows it)"
        )
    return Verdict("class balance", "PASS", msg)


def train_size(p: Prepared, by_class: bool, per_class: int = 20, rows: int = 50) -> Verdict:
    """Enough training rows to learn from and to judge the other checks by: `per_class` per class on average
    (`by_class`), else `rows`."""
    n, total = len(p.raw_train), len(p.raw_train) + len(p.raw_val) + len(p.raw_test)
    k = len(p.encoder.classes or [])
    need, unit = (per_class * k, f"{per_class} per class") if by_class else (rows, "without classes")
    msg = f"train holds {n} of {total} rows"
    if n >= need:
        return Verdict("train size", "PASS", msg)
    return Verdict(
        "train size",
        "WARN",
        f"{msg}, fewer than {need} ({unit}): too few to learn from or to trust the checks on; lower "
        "data.split.val / data.split.test (or raise data.limit), or add data",
    )


def nonfinite_values(p: Prepared) -> Verdict:
    """+-inf in numeric columns, which loading made missing values (counts in the data report)."""
    reported = {"train": p.report.get("nonfinite_values", {}), "test": p.report.get("nonfinite_values_test", {})}
    found = {where: counts for where, counts in reported.items() if counts}
    if not found:
        return Verdict("non-finite values", "PASS", "no +-inf in any numeric column")
    seen = "; ".join(
        f"{where}: " + ", ".join(f"'{c}' ({k} rows)" for c, k in counts.items()) for where, counts in found.items()
    )
    return Verdict(
        "non-finite values",
        "WARN",
        f"+-inf in {seen}; treated as missing values (filled with the train median): fix them at the source if "
        "they are errors, or set data.nonfinite: refuse",
    )


def duplicates(p: Prepared) -> list[Verdict]:
    r = p.report
    n, m = len(p.raw_train), len(p.raw_test)
    within, across = near_duplicate_counts(p.raw_train, p.raw_test)
    exact = r.get("dropped_duplicates", 0)
    kind = "near-identical images" if p.raw_train.images is not None else "rows equal once normalised"
    out = [
        Verdict(
            "duplicates in train",
            "WARN" if within > 0.01 * n else "PASS",
            f"{exact} exact duplicates dropped; near duplicates ({kind}): {share(within, n)}",
        )
    ]
    leak = r.get("test_rows_also_in_train", 0)
    status = "FAIL" if across > 0.05 * m else "WARN" if across > 0.005 * m else "PASS"
    msg = f"test examples also in train: {leak} exact, {share(across, m)} near"
    coarse = None
    if status != "PASS" and p.raw_train.frame is not None:
        coarse = coarse_table(p.raw_train.frame, within + exact, across / max(m, 1))
    if coarse:
        status, msg = "WARN", f"{msg}; {coarse}; de-duplicate only if the same records are in both"
    elif status != "PASS":
        msg += "; the test score will be optimistic: de-duplicate across the split"
    out.append(Verdict("train/test leakage", status, msg))
    conflicts = r.get("same_input_different_target", 0)
    if conflicts:
        out.append(Verdict("conflicting labels", "WARN", f"{conflicts} train examples share an input but not a label"))
    return out


def _alone_score(col: pd.Series, y: np.ndarray, col_val: pd.Series, y_val: np.ndarray, classify: bool) -> float:
    """How well one column predicts the target on val from train alone: the nearest train value's target
    for a number (catches IDs of data sorted by class), the value's majority target for a category.
    Accuracy, or R² for regression."""
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > 32:
        x = col.to_numpy(float)
        keep = ~np.isnan(x)
        order = np.argsort(x[keep])
        xs, ys = x[keep][order], y[keep][order]
        v = np.nan_to_num(col_val.to_numpy(float), nan=float(np.nanmedian(x)))
        right = np.clip(np.searchsorted(xs, v), 1, len(xs) - 1)
        nearest = np.where(np.abs(v - xs[right - 1]) <= np.abs(xs[right] - v), right - 1, right)
        pred = ys[nearest]
    else:
        df = pd.DataFrame({"k": col.astype(str).to_numpy(), "y": y})
        if classify:
            table, fallback = df.groupby("k")["y"].agg(lambda s: s.value_counts().index[0]), pd.Series(y).mode()[0]
        else:
            table, fallback = df.groupby("k")["y"].mean(), float(np.mean(y))
        pred = col_val.astype(str).map(table).fillna(fallback).to_numpy()
    if classify:
        return float((pred.astype(str) == y_val.astype(str)).mean())
    pred = pred.astype(float)
    total = ((y_val - y_val.mean()) ** 2).sum()
    return float(1 - ((y_val - pred) ** 2).sum() / max(total, 1e-12))


def _id_like(col: pd.Series) -> bool:
    """Integers (or strings) that are unique to almost every row: a record number or key."""
    values = col.dropna()
    if len(values) < 20 or values.nunique() < 0.95 * len(values):
        return False
    return not pd.api.types.is_numeric_dtype(values) or bool((values == values.round()).all())


def _skill(score: float, y: np.ndarray, y_val: np.ndarray, classify: bool) -> float:
    """A score as the share of the way from guessing (the majority class; R² is that already) to perfect."""
    if not classify:
        return score
    values, counts = np.unique(y.astype(str), return_counts=True)
    base = float((y_val.astype(str) == values[np.argmax(counts)]).mean())
    return (score - base) / max(1 - base, 1e-12)


LEAK_ROWS = 10_000  # the others' ridge fit (`_others_skill`) reads at most this many train and val rows
LEAK_FEATURES = 1_000  # ... and this many features: a wide table's categories keep their most frequent values
LEAK_VALUES = 8  # ... down to this many each; a table wider still is not fitted (a fit knowing less of the
# other columns would make one column look far better than all of them together: a false WARN)
Layout = tuple[list[int], list[tuple[int, np.ndarray]]]  # the numbers' indices; each category's index and values


def _layout(p: Prepared, left_out: str) -> Layout | None:
    """The features of `_features`: the numbers' indices, and each category's (index, codes one-hot encoded):
    its values seen in train (of up to 64), the most frequent first, cut so that all fit in LEAK_FEATURES.
    None where they cannot fit with LEAK_VALUES values a category (the fit is not made)."""
    nums = [i for i, c in enumerate(p.encoder.numeric) if c["name"] != left_out]
    cats = [i for i, c in enumerate(p.encoder.categories) if c["name"] != left_out and len(c["vocab"]) <= 64]
    each = (LEAK_FEATURES - len(nums)) // max(len(cats), 1)
    if len(nums) > LEAK_FEATURES or (cats and each < LEAK_VALUES):
        return None
    codes = p.train.inputs["cat"] if cats else None
    kept = []
    for i in cats:
        counts = np.bincount(codes[:, i].numpy(), minlength=len(p.encoder.categories[i]["vocab"]))[1:]  # 0: unseen
        order = np.argsort(-counts, kind="stable")[: min(each, int((counts > 0).sum()))]
        kept.append((i, np.sort(order) + 1))
    return nums, kept


def _features(inputs: dict[str, torch.Tensor], layout: Layout, rows: np.ndarray) -> np.ndarray:
    """Rows (`rows` of `inputs`) x features (`_layout`) for a linear fit: the encoded numbers, then each
    category's one-hot values."""
    nums, cats = layout
    cols = [inputs["num"][rows][:, nums].numpy().astype(np.float64)] if nums else []
    for i, values in cats:
        cols.append((inputs["cat"][rows, i].numpy()[:, None] == values[None, :]).astype(np.float64))
    return np.concatenate(cols, 1) if cols else np.zeros((len(rows), 0))


def _sample(n: int) -> np.ndarray:
    """Up to LEAK_ROWS of `n` rows, the same each run."""
    return np.sort(np.random.default_rng(0).choice(n, LEAK_ROWS, replace=False)) if n > LEAK_ROWS else np.arange(n)


def _others_skill(p: Prepared, left_out: str, classify: bool) -> float | None:
    """The skill (`_skill`) on val of a ridge fit on every input column but `left_out` (`_features`): what the
    rest of the table knows of the target. None when nothing is left to fit (or too much: `_layout`)."""
    layout = _layout(p, left_out)
    if layout is None:
        return None
    rows, rows_val = _sample(len(p.train.target)), _sample(len(p.val.target))
    x, x_val = _features(p.train.inputs, layout, rows), _features(p.val.inputs, layout, rows_val)
    if not x.shape[1] or not len(x_val):
        return None
    y, y_val = p.train.target.numpy()[rows], p.val.target.numpy()[rows_val]
    x, x_val = np.c_[np.ones(len(x)), x], np.c_[np.ones(len(x_val)), x_val]
    if classify:  # x.T @ the one-hot targets: each class's rows summed (no rows x classes matrix)
        labels = y.astype(np.int64)
        order = np.argsort(labels, kind="stable")
        present, starts = np.unique(labels[order], return_index=True)
        xty = np.zeros((x.shape[1], int(labels.max()) + 1))
        xty[:, present] = np.add.reduceat(x[order], starts, axis=0).T
    else:
        xty = x.T @ y[:, None]
    w = np.linalg.solve(x.T @ x + 1e-3 * len(x) * np.eye(x.shape[1]), xty)
    if classify:
        pred = np.concatenate([(x_val[i : i + 1000] @ w).argmax(1) for i in range(0, len(x_val), 1000)])
        return _skill(float((pred == y_val).mean()), y, y_val, True)
    pred = (x_val @ w)[:, 0]
    total = ((y_val - y_val.mean()) ** 2).sum()
    return float(1 - ((y_val - pred) ** 2).sum() / max(total, 1e-12))


def _threshold_of_target(col: pd.Series, y: np.ndarray, classify: bool) -> bool:
    """Whether a column of few values is a function of the target cut at thresholds (each value goes with
    its own interval of a numeric target, or its own classes): e.g. expensive = price > q. Needs two
    values seen 5 times or more, among at least 30 rows."""
    codes, keys = pd.factorize(col, use_na_sentinel=False)  # a missing value is a value of its own
    counts = np.bincount(codes, minlength=len(keys))
    if len(y) < 30 or len(keys) > 32 or len(keys) < 2 or (counts >= 5).sum() < 2:
        return False
    if classify:  # no class shared by two values, and fewer values than classes (else `_alone_score` sees it)
        classes, labels = np.unique(y.astype(str), return_inverse=True)
        pairs = np.unique(labels * len(keys) + codes)  # each (class, value) seen
        return len(pairs) == len(classes) and len(keys) < len(classes)
    y = y.astype(float)
    lo, hi = np.full(len(keys), np.inf), np.full(len(keys), -np.inf)
    np.minimum.at(lo, codes, y)
    np.maximum.at(hi, codes, y)
    order = np.argsort(lo)
    return bool((hi[order][:-1] < lo[order][1:]).all())


def id_columns(p: Prepared) -> Verdict:
    """Columns that look like row ids (sw2.data.columns): left out of the inputs unless the spec keeps them."""
    ids = [c for c in p.encoder.columns if c["kind"] == "id"]
    if not ids:
        return Verdict("id columns", "PASS", "no column looks like a row id")
    named = ", ".join(f"'{c['name']}' ({c['reason']})" for c in ids)
    keep = ", ".join(f"{c['name']}: {'number' if 'row number' in c['reason'] else 'category'}" for c in ids)
    what, which = ("a row id", "it carries") if len(ids) == 1 else ("row ids", "one carries")
    return Verdict(
        "id columns",
        "WARN",
        f"left out of the inputs as {what}: {named}; if {which} meaning, keep it with inputs: {{{keep}}}",
    )


def columns(p: Prepared, leak: str | None) -> list[Verdict]:
    """Constant, mostly missing, id-like and leaking columns. `leak` is how a column alone is scored against
    the target: "accuracy" (one class label per row), "r2" (one number), None (no leak check). A column leaks
    when it alone predicts the target almost perfectly (a row id doing so: FAIL), predicts it far better than
    all the other columns together, or is the target cut at thresholds."""
    train, val = p.raw_train, p.raw_val
    if train.frame is None:
        return []
    out: list[Verdict] = [id_columns(p)] if p.encoder.columns else []
    used = list(dict.fromkeys(c["name"] for c in p.encoder.numeric + p.encoder.categories))  # text: no lookup table
    constant = [c for c in used + p.encoder.text_columns if train.frame[c].nunique(dropna=False) <= 1]
    out.append(
        Verdict("constant columns", "WARN", f"{', '.join(constant)} never change in train; drop them from inputs")
        if constant
        else Verdict("constant columns", "PASS", "every input column varies")
    )
    rates = train.frame[used + p.encoder.text_columns].isna().mean()
    worst = rates.idxmax() if len(rates) else None
    if worst is not None and rates[worst] > 0.5:
        out.append(Verdict("missing values", "WARN", f"'{worst}' is {rates[worst]:.0%} missing; drop or fill it"))
    else:
        top = f"; most in '{worst}' ({rates[worst]:.1%})" if worst is not None and rates[worst] > 0 else ""
        out.append(Verdict("missing values", "PASS", f"no input column is over 50% missing{top}"))
    if leak is None or len(val) == 0 or not [c for c in used if c not in constant]:
        return out
    classify = leak == "accuracy"
    y, y_val = np.asarray(train.target), np.asarray(val.target)
    if not classify:
        y, y_val = y.astype(float), y_val.astype(float)
    scores = {c: _alone_score(train.frame[c], y, val.frame[c], y_val, classify) for c in used if c not in constant}
    metric = "accuracy" if classify else "R²"
    c, best = max(scores.items(), key=lambda kv: kv[1], default=(None, 0.0))
    if c is not None and best >= 0.9 and _id_like(train.frame[c]):
        status = "FAIL"
        msg = f"'{c}' looks like a row ID and alone predicts the target (val {metric} {best:.3f}): the rows "
        msg += "were numbered in label order; drop it from inputs"
    elif best >= 0.97:
        status = "WARN"
        msg = f"'{c}' alone predicts the target (val {metric} {best:.3f}); make sure it is not derived from "
        msg += "the label and is known at prediction time"
    elif derived := _derived(p, scores, y, y_val, classify):
        status, msg = "WARN", derived + "; make sure it is not derived from the label and is known at prediction time"
    else:
        status, msg = "PASS", f"no column alone predicts the target (best: {c}, val {metric} {best:.3f})"
    out.append(Verdict("leaking column", status, msg))
    return out


def _derived(p: Prepared, scores: dict[str, float], y: np.ndarray, y_val: np.ndarray, classify: bool) -> str | None:
    """Why a column looks derived from the target (cut at thresholds of it, or far better alone than every other
    column together), else None."""
    metric = "accuracy" if classify else "R²"
    for c in scores:
        if _threshold_of_target(p.raw_train.frame[c], y, classify):
            what = "classes" if classify else "interval of the target"
            return f"'{c}' is the target cut at thresholds: each of its values goes with its own {what}"
    c, best = max(scores.items(), key=lambda kv: kv[1])
    alone = _skill(best, y, y_val, classify)
    if alone < 0.6 or not len(p.val):
        return None
    others = _others_skill(p, c, classify)
    if others is not None and others < 0.25 * alone:
        return (
            f"'{c}' alone predicts the target far better than all the other columns together (val {metric} "
            f"{best:.3f}; skill over guessing {alone:.2f}, the others' {others:.2f})"
        )
    return None


def labels_only_in_test(p: Prepared) -> Verdict:
    k = p.report.get("dropped_unseen_labels_test", 0) + p.report.get("dropped_unseen_labels_val", 0)
    if k:
        return Verdict(
            "labels only in test",
            "WARN",
            f"{k} val/test examples have labels never seen in train; "
            "they cannot be predicted and are left out of the scores",
        )
    return Verdict("labels only in test", "PASS", "every val/test label occurs in train")


def data_verdicts(p: Prepared, by_class: bool, leak: str | None) -> list[Verdict]:
    """The checks of a supervised task's data; `by_class`: the target is one class label per example (class
    balance, rows per class); `leak`: how a leaking column is scored (see `columns`)."""
    balance = [class_balance(p)] if by_class else []
    return [
        *balance,
        train_size(p, by_class),
        *duplicates(p),
        *columns(p, leak),
        nonfinite_values(p),
        labels_only_in_test(p),
    ]
