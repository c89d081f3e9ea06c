"""Metrics the tasks report (each beside its dumb baseline, see sw2.tasks): classification, calibration,
regression."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


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
