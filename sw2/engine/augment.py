"""Batched augmentation on tensors, no per-sample Python in the hot path: images (uint8 N x C x H x W) and
token ids (N x L, [PAD] = 0)."""

from __future__ import annotations

from collections.abc import Iterable

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


def text_active(aug: AugmentSpec) -> bool:
    return aug.token_drop > 0 or aug.token_swap > 0


def augmented(aug: AugmentSpec, inputs: Iterable[str]) -> tuple[bool, bool]:
    """Whether training batches of these inputs (by name) get (their images, their text) augmented."""
    names = set(inputs)
    return bool(is_active(aug)) and "image" in names, text_active(aug) and "text" in names


def augment_text(ids: torch.Tensor, aug: AugmentSpec, gen: torch.Generator) -> torch.Tensor:
    """Drop tokens at random (the rest close up) and swap random neighbours; the first token ([CLS]) stays."""
    n, length = ids.shape
    pos = torch.arange(length, device=ids.device).expand(n, length)
    real = (ids != 0) & (pos > 0)
    if aug.token_drop > 0:
        drop = real & (torch.rand(n, length, generator=gen).to(ids.device) < aug.token_drop)
        order = torch.where(drop, pos + length, pos).argsort(1)  # kept tokens first, in order (keys unique)
        ids = torch.where(drop, 0, ids).gather(1, order)
        real = (ids != 0) & (pos > 0)
    if aug.token_swap > 0:
        pair = real[:, :-1] & real[:, 1:]
        start = pair & (torch.rand(n, length - 1, generator=gen).to(ids.device) < aug.token_swap)
        start[:, 1:] &= ~start[:, :-1]  # no token takes part in two swaps
        src = pos.clone()
        src[:, :-1] = torch.where(start, pos[:, 1:], src[:, :-1])
        src[:, 1:] = torch.where(start, pos[:, :-1], src[:, 1:])
        ids = ids.gather(1, src)
    return ids
