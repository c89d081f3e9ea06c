"""Batched inference: model outputs for a dict of input tensors, with optional flip TTA."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    batch_size: int = 1024,
    tta: str = "none",
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """Raw model outputs (logits or standardised values), in order, on the CPU."""
    model.eval()
    device = device or next(model.parameters()).device
    n = len(next(iter(inputs.values())))
    outs = []
    for i in range(0, n, batch_size):
        batch = {k: v[i : i + batch_size].to(device, non_blocking=True) for k, v in inputs.items()}
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            out = model(batch).float()
            if tta == "flip" and "image" in batch:
                out = 0.5 * (out + model({**batch, "image": batch["image"].flip(3)}).float())
        outs.append(out.cpu())
    return torch.cat(outs) if outs else torch.empty(0)
