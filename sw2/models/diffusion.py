"""A small denoising diffusion model (DDPM, Ho et al., 2020): a compact U-Net predicts the noise ε that was
added to an image at noise level t, under a cosine schedule (Nichol & Dhariwal, 2021); images are made by
DDIM's deterministic strided sampling (Song et al., 2021) in a few dozen of the schedule's steps.

The U-Net: residual blocks of group norm, SiLU and 3 x 3 convolutions, each told the noise level (a sinusoidal
embedding through a small MLP, plus the class's embedding where the model is class-conditional), two halvings
and two doublings with skip connections (28 -> 14 -> 7 -> 14 -> 28). Class-conditional models also learn
without the class 10% of the time (a "no class" embedding), so that sampling can use classifier-free guidance
(Ho & Salimans, 2021). The schedule lives in the module's buffers: a bundle samples with nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.errors import UserError
from sw2.model_options import DiffusionOptions
from sw2.models.base import Model
from sw2.plugins import MODELS


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """ᾱ_t for t = 0..T: the share of the image's variance left at noise level t (1 at t = 0)."""
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)  # Nichol & Dhariwal clip the last betas
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)]).float()


def level_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of noise levels t (in 0..1), `dim` wide."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = 1000 * t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


class Block(nn.Module):
    """A residual block told the noise level (and class): GN, SiLU, conv, + level, GN, SiLU, conv."""

    def __init__(self, cin: int, cout: int, cond: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.level = nn.Linear(cond, cout)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.level(cond)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


@MODELS.register("diffusion")
class Diffusion(Model):
    """Noisy images x_t in [-1, 1]-scale, their noise levels t (integers 1..T) and classes -> the predicted ε."""

    options = DiffusionOptions

    def __init__(
        self, shape: list[int], widths: list[int] | None = None, n_classes: int = 0, timesteps: int = 1000
    ) -> None:
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4 or min(h, w) < 8:
            raise UserError(f"model: diffusion makes images whose sides divide by 4 (8 or more); these are {h} x {w}")
        w0, w1, w2 = widths or [32, 64, 64]  # finest first
        cond = 4 * w0
        self.timesteps, self.n_classes = timesteps, n_classes
        self.register_buffer("alpha_bar", cosine_alpha_bar(timesteps))
        self.level = nn.Sequential(nn.Linear(w0, cond), nn.SiLU(), nn.Linear(cond, cond))
        self.classes = nn.Embedding(n_classes + 1, cond) if n_classes else None  # the last row: no class
        self.stem = nn.Conv2d(c, w0, 3, padding=1)
        self.down1, self.half1 = Block(w0, w0, cond), nn.Conv2d(w0, w1, 3, 2, 1)
        self.down2, self.half2 = Block(w1, w1, cond), nn.Conv2d(w1, w2, 3, 2, 1)
        self.middle = Block(w2, w2, cond)
        self.up2 = Block(w2 + w1, w1, cond)
        self.up1 = Block(w1 + w0, w0, cond)
        self.out_norm = nn.GroupNorm(min(8, w0), w0)
        self.head = nn.Conv2d(w0, c, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # the untrained model predicts no noise
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.level(level_embedding(t.float() / self.timesteps, self.level[0].in_features))
        if self.classes is not None:
            cond = cond + self.classes(torch.full_like(t, self.n_classes) if y is None else y)
        h0 = self.down1(self.stem(x), cond)
        h1 = self.down2(self.half1(h0), cond)
        h = self.middle(self.half2(h1), cond)
        h = self.up2(torch.cat([F.interpolate(h, size=h1.shape[-2:]), h1], 1), cond)
        h = self.up1(torch.cat([F.interpolate(h, size=h0.shape[-2:]), h0], 1), cond)
        return self.head(F.silu(self.out_norm(h)))

    def noised(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t: clean images `x0` at noise levels `t` with `noise` (the forward process, in one step)."""
        a = self.alpha_bar[t][:, None, None, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    @torch.no_grad()
    def sample(
        self,
        noise: torch.Tensor,
        y: torch.Tensor | None = None,
        steps: int = 50,
        guidance: float = 0.0,
        each_step: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Images in [-1, 1] from Gaussian `noise` (n x C x H x W) by DDIM (η = 0) in `steps` strided steps;
        with classes `y` and `guidance` > 0, classifier-free guidance. `each_step` is called after every step
        (a server's deadline check raises there to stop the work)."""
        if self.n_classes and y is None:
            raise UserError("this diffusion model is class-conditional: give a class for each sample")
        steps = max(1, min(steps, self.timesteps))
        levels = torch.linspace(self.timesteps, 0, steps + 1).round().long().tolist()
        x = noise
        for t, prev in zip(levels, levels[1:]):
            at = torch.full((len(x),), t, dtype=torch.long, device=x.device)
            eps = self(x, at, y)
            if guidance and y is not None:
                eps = eps + guidance * (eps - self(x, at, None))
            a, a_prev = self.alpha_bar[t], self.alpha_bar[prev]
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt().clamp_min(1e-8)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
            if each_step is not None:
                each_step()
        return x.clamp(-1, 1)

    @staticmethod
    def configure(options: DiffusionOptions, encoder: Any, n_train: int) -> dict[str, Any]:
        if options.widths is not None and len(options.widths) != 3:
            raise UserError("model.widths: the diffusion U-Net takes 3 widths, finest first (e.g. [32, 64, 64])")
        return {"shape": list(encoder.image_shape), "widths": options.widths, "timesteps": options.timesteps,
                "n_classes": len(encoder.classes) if options.conditional else 0}  # fmt: skip
