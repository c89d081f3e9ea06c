"""A model's scores under attack: each held-out example replaced by its adversarial version (FGSM or PGD in an
L-infinity ball, sw2/engine/adversarial.py), beside the clean scores, with a few of them kept as pictures.

`sw2 attack BUNDLE` writes the record into the bundle (attack.json, and attack_examples.png for images: the
clean images over their adversarial versions), which the report shows. The attack runs in eval mode with a
fixed seed, a chunk of examples at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from sw2.engine.adversarial import perturb

CHUNK = 256  # examples attacked at a time
SHOWN = 8  # examples in the picture


def under_attack(
    model: nn.Module,
    task: Any,
    encoder: Any,
    inputs: dict[str, torch.Tensor],
    target: torch.Tensor,
    *,
    method: str = "pgd",
    eps: float = 0.1,
    steps: int = 20,
    alpha: float | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(record, a few clean and adversarial inputs): the task's metrics on clean and on attacked inputs, the
    share of predictions the attack changed, and the attack's settings."""
    was = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    clean, attacked, shown = [], [], {}
    n = len(target)
    try:
        for i in range(0, n, CHUNK):
            batch = {k: v[i : i + CHUNK] for k, v in inputs.items()}
            y = target[i : i + CHUNK]
            worse = perturb(model, task.loss, batch, y, method, eps, steps, alpha, generator)
            with torch.no_grad():
                clean.append(model(batch).float())
                attacked.append(model(worse).float())
            if not shown:
                shown = {"clean": batch, "attacked": worse}
    finally:
        model.train(was)
    out_clean, out_attacked = torch.cat(clean), torch.cat(attacked)
    record: dict[str, Any] = {
        "method": method, "eps": eps, "steps": 1 if method == "fgsm" else steps, "alpha": alpha, "seed": seed,
        "n": n, "clean": _scores(task, out_clean, target, encoder),
        "attacked": _scores(task, out_attacked, target, encoder),
    }  # fmt: skip
    if out_clean.shape[-1] > 1:
        record["changed"] = float((out_clean.argmax(-1) != out_attacked.argmax(-1)).float().mean())
    return record, _pictures(shown)


def _scores(task: Any, outputs: torch.Tensor, target: torch.Tensor, encoder: Any) -> dict[str, Any]:
    scores = task.evaluate(outputs, target, encoder)
    return {k: v for k, v in scores.items() if k in task.metrics}


def _pictures(shown: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    if not shown or "image" not in shown["clean"]:
        return {}
    return {name: part["image"][:SHOWN].float().round().clamp(0, 255).to(torch.uint8) for name, part in shown.items()}


def examples_png(pictures: dict[str, torch.Tensor]) -> bytes | None:
    """The clean images (first row) over their adversarial versions (second row), one PNG; None without images."""
    if not pictures:
        return None
    from sw2.data.images import grid_png

    both = np.concatenate([pictures["clean"].numpy(), pictures["attacked"].numpy()])
    return grid_png(both, cols=len(pictures["clean"]))
