"""Batched inference: model outputs for a dict of input tensors, with optional test-time augmentation.

TTA for images: `flip` averages the image and its mirror; `flip_translate` also averages the mirrored
pair of two one-pixel shifts (up-left and down-right, reflect padding), weighted as in airbench.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
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
            out = with_tta(model, batch, tta if "image" in batch else "none")
        outs.append(out.cpu())
    return torch.cat(outs) if outs else torch.empty(0, model.head.out_features)  # every sw2 model has a head


Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def with_tta(model: Forward, batch: dict[str, torch.Tensor], tta: str) -> torch.Tensor:
    """`model`'s outputs on `batch` (any callable of a batch: a module, an ONNX session), averaged over the
    test-time augmentations `tta` of its images."""
    if tta == "none":
        return model(batch).float()

    def mirrored(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model({**batch, "image": x}).float() + model({**batch, "image": x.flip(3)}).float())

    x = batch["image"]
    out = mirrored(x)
    if tta == "flip_translate":
        h, w = x.shape[2:]
        padded = F.pad(x.float(), (1, 1, 1, 1), mode="reflect")
        out = 0.5 * out + 0.25 * (mirrored(padded[..., :h, :w]) + mirrored(padded[..., 2:, 2:]))
    return out
