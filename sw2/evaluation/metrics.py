"""Metrics for each task, always reported beside the dumb baseline (majority class or mean)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sw2.data.encode import Encoder


def classification(probs: torch.Tensor, y: torch.Tensor, classes: list[Any]) -> dict[str, Any]:
    k = len(classes)
    pred = probs.argmax(1)
    conf = torch.bincount(y * k + pred, minlength=k * k).view(k, k)  # rows: true, columns: predicted
    tp = conf.diag().float()
    precision = tp / conf.sum(0).clamp_min(1)
    recall = tp / conf.sum(1).clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    present = conf.sum(1) > 0
    per_class = [
        {"class": c, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision.tolist(), recall.tolist(), f1.tolist(), conf.sum(1).tolist())
    ]
    return {
        "accuracy": (pred == y).float().mean().item(),
        "macro_f1": f1[present].mean().item(),
        "log_loss": F.nll_loss(probs.clamp_min(1e-15).log(), y).item(),
        "per_class": per_class,
        "confusion": conf.tolist(),
        "classes": classes,
    }


def calibration(probs: torch.Tensor, y: torch.Tensor, bins: int = 10) -> dict[str, Any]:
    """Reliability: mean confidence and accuracy per confidence bin, and the expected calibration error."""
    conf, pred = probs.max(1)
    correct = (pred == y).float()
    which = (conf * bins).long().clamp(max=bins - 1)
    count = torch.bincount(which, minlength=bins).float()
    mean_conf = torch.bincount(which, conf, minlength=bins) / count.clamp_min(1)
    accuracy = torch.bincount(which, correct, minlength=bins) / count.clamp_min(1)
    ece = float(((mean_conf - accuracy).abs() * count).sum() / max(len(y), 1))
    return {
        "count": count.long().tolist(),
        "confidence": mean_conf.tolist(),
        "accuracy": accuracy.tolist(),
        "ece": ece,
    }


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The temperature T that minimises the log-loss of softmax(logits / T) on (held-out) `y`: a grid over
    0.03..30, deterministic. Label smoothing leaves a model under-confident (T < 1 sharpens it)."""
    if not len(y):
        return 1.0
    grid = torch.logspace(-1.5, 1.5, 61)
    losses = torch.stack([F.cross_entropy(logits.float() / t, y) for t in grid])
    return float(grid[losses.argmin()])


def regression(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    err = pred - y
    total = ((y - y.mean()) ** 2).sum().clamp_min(1e-12)
    return {
        "mae": err.abs().mean().item(),
        "rmse": err.pow(2).mean().sqrt().item(),
        "r2": (1 - err.pow(2).sum() / total).item(),
    }


def evaluate(outputs: torch.Tensor, y: torch.Tensor, encoder: Encoder) -> dict[str, Any]:
    """Metrics of model outputs against encoded targets `y`, and of the baseline fitted on the train split."""
    n = len(y)
    if encoder.classes is not None:
        k = len(encoder.classes)
        prior = torch.tensor(encoder.class_counts or [1] * k).float().clamp_min(0.5)
        prior = prior / prior.sum()
        base = classification(prior.expand(n, k), y, encoder.classes)
        model = classification(outputs.softmax(1), y, encoder.classes)
        baseline = {"name": "majority class", **{m: base[m] for m in ("accuracy", "macro_f1", "log_loss")}}
    else:
        truth = encoder.decode_regression(y)
        model = regression(encoder.decode_regression(outputs.squeeze(1)), truth)
        mean = torch.full((n,), encoder.target_mean)  # the train mean, in the target's units
        baseline = {"name": "train mean", **regression(mean, truth)}
    return {"n": n, **model, "baseline": baseline}
