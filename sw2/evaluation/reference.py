"""The serving reference: what the training data looked like, for drift monitoring (`sw2 serve`'s /metrics).

At training, the bundle gets reference.json: for each input statistic (every numeric column's value, each date
column's days since the training split's first date as `COLUMN_days`, each image's mean brightness, each
text's length in characters) the bin edges at the training split's deciles and the training split's share of
each bin, and the share of each class the model predicts on the validation split. A server bins what it is
sent the same way and compares with the Population Stability Index, PSI = sum((p - q) * ln(p / q)): below 0.1
is usually read as no shift, above 0.2 (the default alert, the spec's `serve.drift_threshold`) as a
significant one. A date column is watched on the elapsed days the model reads (sw2.data.dates): dates served
after the training period land above the training's last decile, so their PSI rises as the model is asked
about a time it never saw — drift by design, not noise (a date that does not parse is missing, as a number
that does not is).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sw2.data.dates import date_features, parse_dates
from sw2.data.encode import Encoder
from sw2.data.examples import Examples

EPS = 1e-4  # an empty bin's share: PSI stays finite
DECILES = np.linspace(0.1, 0.9, 9)


def statistics(encoder: Encoder, ex: Examples) -> dict[str, np.ndarray]:
    """One number per example for each statistic drift is watched on (NaN where a value is missing)."""
    out: dict[str, np.ndarray] = {}
    if ex.images is not None:
        out["image_brightness"] = ex.images.reshape(len(ex.images), -1).mean(1).astype(np.float64)
    frame = ex.frame if ex.frame is not None else pd.DataFrame()
    for c in encoder.numeric:
        if c["name"] not in frame:
            continue
        if "date" not in c:
            out[c["name"]] = pd.to_numeric(frame[c["name"]], errors="coerce").to_numpy(np.float64)
        elif c["date"] == "days":  # a date column: once, as the model reads it (its other parts are seasons)
            parsed = parse_dates(frame[c["name"]], c["format"])[0]
            out[f"{c['name']}_days"] = date_features(parsed, c["origin"])["days"].to_numpy(np.float64)
    for name in encoder.text_columns:
        if name in frame:
            out[f"{name}_length"] = frame[name].fillna("").astype(str).str.len().to_numpy(np.float64)
    return out


def shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """The share of `values` (missing ones left out) in each bin: below the first edge, between edges, above."""
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), values, side="right"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray | list[float], actual: np.ndarray | list[float]) -> float:
    p, q = np.clip(np.asarray(actual, float), EPS, None), np.clip(np.asarray(expected, float), EPS, None)
    return float(np.sum((p - q) * np.log(p / q)))


def build(encoder: Encoder, train: Examples, val_outputs: torch.Tensor | None, serve: Any) -> dict[str, Any]:
    """reference.json's content from the training examples and the model's outputs on val."""
    columns = {}
    for name, values in statistics(encoder, train).items():
        known = values[~np.isnan(values)]
        if len(known) == 0:
            continue
        edges = sorted(set(np.quantile(known, DECILES).round(6).tolist()))
        columns[name] = {"edges": edges, "shares": shares(values, edges).round(6).tolist()}
    classes = None
    if encoder.classes is not None:
        n = len(encoder.classes)
        if val_outputs is not None and len(val_outputs):
            counts = np.bincount(val_outputs.argmax(1).numpy(), minlength=n)
        else:
            counts = np.asarray(encoder.class_counts or [1] * n)
        classes = {"names": [str(c) for c in encoder.classes], "shares": (counts / counts.sum()).round(6).tolist()}
    return {
        "statistics": columns,
        "predicted_classes": classes,
        "drift_threshold": serve.drift_threshold,
        "drift_window": serve.drift_window,
        "examples": len(train),
    }


def write(folder: Path, data: Any, outputs: dict[str, torch.Tensor], serve: Any) -> None:
    """BUNDLE/reference.json: the training examples' statistics (for a task that `predicts` examples)."""
    record = build(data.encoder, data.raw_train, outputs.get("val"), serve)
    (folder / "reference.json").write_text(json.dumps(record, indent=2))
