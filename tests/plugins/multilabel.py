"""A task plug-in written as a user would: multi-label classification in one file. The target column holds
";"-separated labels (none, one or several per row); the model has one sigmoid output per label.

Registered by importing this module (or naming it in $SW2_PLUGINS for the CLI); nothing else in sw2 changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sw2.tasks import TASKS
from sw2.tasks.supervised import Supervised


def _sets(values: Any) -> list[set[str]]:
    return [{t for t in str(v).split(";") if t.strip()} if pd.notna(v) else set() for v in values]


def _f1(pred: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Micro and macro F1 of 0/1 matrices (examples x labels)."""
    tp, fp, fn = (pred * y).sum(0), (pred * (1 - y)).sum(0), ((1 - pred) * y).sum(0)
    micro = float(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()).clamp_min(1e-12))
    macro = float((2 * tp / (2 * tp + fp + fn).clamp_min(1e-12)).mean())
    return micro, macro


class MultiLabel(Supervised):
    metrics = ("micro_f1", "macro_f1", "subset_accuracy")

    def fit_target(self, encoder: Any, values: np.ndarray, target: str) -> None:
        sets = _sets(values)
        encoder.classes = sorted(set().union(*sets))
        encoder.class_counts = [sum(c in s for s in sets) for c in encoder.classes]

    def encode_target(self, encoder: Any, values: np.ndarray) -> torch.Tensor:
        index = {c: i for i, c in enumerate(encoder.classes)}
        y = torch.zeros(len(values), len(encoder.classes))
        for row, tags in enumerate(_sets(values)):
            for t in tags & index.keys():
                y[row, index[t]] = 1
        return y

    def n_outputs(self, encoder: Any) -> int:
        return len(encoder.classes)

    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out.float(), y, reduction="none").mean(1)

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        return _f1((out > 0).float(), y)[0]

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        p = y.float().mean(0).clamp(0.01, 0.99)
        return (p / (1 - p)).log()

    def init_loss(self, data: Any) -> tuple[float, str]:
        p = data.train.target.float().mean(0).clamp(1e-3, 1 - 1e-3)
        return float(-(p * p.log() + (1 - p) * (1 - p).log()).mean()), "mean binary entropy of the labels"

    def evaluate(self, outputs: torch.Tensor, y: torch.Tensor, encoder: Any) -> dict[str, Any]:
        def scores(pred: torch.Tensor) -> dict[str, float]:
            micro, macro = _f1(pred, y)
            return {"micro_f1": micro, "macro_f1": macro, "subset_accuracy": float((pred == y).all(1).float().mean())}

        prior = torch.tensor(encoder.class_counts, dtype=torch.float) / max(1, sum(encoder.class_counts))
        base = (prior > 0.5).float().expand_as(y)  # the labels most rows carry
        return {"n": len(y), **scores((outputs > 0).float()), "baseline": {"name": "frequent labels", **scores(base)}}

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        return scores["micro_f1"] > base["micro_f1"], f"micro-F1 {scores['micro_f1']:.4f} vs {base['micro_f1']:.4f}"

    def predict(self, bundle: Any, data: Any) -> np.ndarray:
        on = (bundle.outputs(data) > 0).numpy()
        return np.array([";".join(c for c, k in zip(bundle.encoder.classes, row) if k) for row in on], dtype=object)

    def answers(self, encoder: Any, outputs: torch.Tensor, top: int) -> list[dict[str, Any]]:
        """What `sw2 serve` answers per example: the labels it carries and every label's probability."""
        probs = outputs.float().sigmoid().tolist()
        return [
            {
                "labels": [c for c, q in zip(encoder.classes, row) if q > 0.5],
                "probabilities": {str(c): round(q, 6) for c, q in zip(encoder.classes, row)},
            }  # fmt: skip
            for row in probs
        ]

    def prediction_rows(self, bundle: Any, data: Any, top: int) -> list[dict[str, Any]]:
        examples = bundle.examples(data)
        probs = bundle.outputs(examples).sigmoid()
        labels = self.predict(bundle, examples)
        return [
            {"id": i, "prediction": p, **{f"p_{c}": round(float(q), 4) for c, q in zip(bundle.encoder.classes, row)}}
            for i, p, row in zip(examples.ids, labels, probs.tolist())
        ]


TASKS.register("multilabel")(MultiLabel("multilabel", "micro_f1"))
