"""Batched image augmentation on uint8 tensors: no per-sample Python in the hot path."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sw2.spec import AugmentSpec


def is_active(aug: AugmentSpec) -> bool:
    return aug.flip or aug.translate > 0 or aug.cutout > 0


def alternating_flips(n: int, seed: int) -> torch.Tensor:
    """One random bit per training example; epoch e flips the examples whose bit differs from e's parity,
    so every example is seen mirrored exactly every other epoch (airbench's alternating flip)."""
    return torch.rand(n, generator=torch.Generator().manual_seed(seed + 1)) < 0.5


def augment(x: torch.Tensor, aug: AugmentSpec, gen: torch.Generator, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Flip / translate / cutout of a batch N x C x H x W, each example drawn independently.

    `flip` (a bool per example) overrides the random flip draw, for `flip: alternate`.
    """
    n, _, h, w = x.shape
    if aug.flip:
        if flip is None:
            flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
    if aug.translate:
        t = aug.translate
        padded = F.pad(x, (t, t, t, t), mode="reflect" if x.is_floating_point() else "constant")
        dx = torch.randint(0, 2 * t + 1, (n,), generator=gen).to(x.device)
        dy = torch.randint(0, 2 * t + 1, (n,), generator=gen).to(x.device)
        rows = (dy.view(-1, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * t)
        x = padded.gather(2, rows)
        cols = (dx.view(-1, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        x = x.gather(3, cols)
    if aug.cutout:
        s = aug.cutout
        cy = torch.randint(0, h, (n,), generator=gen).to(x.device).view(-1, 1, 1)
        cx = torch.randint(0, w, (n,), generator=gen).to(x.device).view(-1, 1, 1)
        yy = torch.arange(h, device=x.device).view(1, -1, 1)
        xx = torch.arange(w, device=x.device).view(1, 1, -1)
        hole = ((yy - cy).abs() <= s // 2) & ((xx - cx).abs() <= s // 2)
        x = x.masked_fill(hole.unsqueeze(1), 0)
    return x
