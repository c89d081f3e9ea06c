"""DCGAN (Radford et al., 2016): a generator of transposed convolutions with batch norm and ReLU from a noise
vector, a discriminator of strided convolutions with leaky ReLU, every conv and linear weight drawn from
N(0, 0.02) (batch norm's scale from N(1, 0.02)). Sized for any image whose sides divide by 4 (28 x 28 MNIST,
32 x 32 CIFAR-10): the generator starts at a quarter of the side and doubles twice (three times from a side
of 64). Class-conditional (`n_classes`): the generator reads a class embedding beside the noise, the
discriminator scores with a projection (Miyato & Koyama, 2018) of its features on the class's embedding.
Spectral norm (Miyato et al., 2018) on the discriminator's layers is an option (it then has no batch norm).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from sw2.errors import UserError
from sw2.model_options import DCGANOptions
from sw2.models.base import Model
from sw2.plugins import MODELS


def doublings(side: int) -> int:
    """How many times the generator doubles its start: 2 for sides up to 32, 3 from 64 (a start of 4 to 16)."""
    return 2 if side < 64 else 3


def image_side(shape: list[int]) -> tuple[int, int, int]:
    """(channels, height, width) of images a DCGAN makes, refused where the sides do not divide."""
    c, h, w = shape
    k = 2 ** doublings(min(h, w))
    if h % k or w % k or min(h, w) < 8:
        raise UserError(f"model: dcgan makes images whose sides divide by {k} (8 or more); these are {h} x {w}")
    return c, h, w


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv and linear weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@MODELS.register("dcgan")
class Generator(Model):
    """Noise (and a class) -> images in [-1, 1] (tanh)."""

    options = DCGANOptions

    def __init__(self, shape: list[int], latent: int = 64, widths: list[int] | None = None, n_classes: int = 0) -> None:
        super().__init__()
        c, h, w = image_side(shape)
        steps = doublings(min(h, w))
        widths = list(widths or [64 * 2**i for i in range(steps)])  # finest first: [64, 128] for 28 x 28
        if len(widths) != steps:
            raise UserError(f"model.widths: a dcgan for {h} x {w} images takes {steps} widths (finest first)")
        self.latent, self.n_classes, self.start = latent, n_classes, (h >> steps, w >> steps)
        self.embed = nn.Embedding(n_classes, latent) if n_classes else None
        top = widths[-1]
        self.project = nn.Sequential(
            nn.Linear(latent * (2 if n_classes else 1), top * self.start[0] * self.start[1], bias=False),
            nn.Unflatten(1, (top, *self.start)),
            nn.BatchNorm2d(top),
            nn.ReLU(True),
        )
        layers: list[nn.Module] = []
        for wide, narrow in zip(widths[::-1], widths[-2::-1]):
            layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[0], c, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.head = layers[-2]  # type: ignore[assignment]
        init_weights(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise UserError("this generator is class-conditional: give a class for each sample")
            z = torch.cat([z, self.embed(y)], 1)
        return self.body(self.project(z))

    @staticmethod
    def configure(options: DCGANOptions, encoder: Any, n_train: int) -> dict[str, Any]:
        return {"shape": list(encoder.image_shape), "latent": options.latent, "widths": options.widths,
                "n_classes": len(encoder.classes) if options.conditional else 0}  # fmt: skip


@MODELS.register("dcgan_discriminator")
class Discriminator(Model):
    """Images in [-1, 1] (and their classes) -> one real-or-fake score each (a logit)."""

    options = DCGANOptions

    def __init__(
        self, shape: list[int], widths: list[int] | None = None, n_classes: int = 0, spectral: bool = False
    ) -> None:
        super().__init__()
        c, h, w = image_side(shape)
        steps = doublings(min(h, w))
        widths = list(widths or [64 * 2**i for i in range(steps)])
        norm = (lambda m: spectral_norm(m)) if spectral else (lambda m: m)
        layers: list[nn.Module] = [norm(nn.Conv2d(c, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for narrow, wide in zip(widths, widths[1:]):
            layers.append(norm(nn.Conv2d(narrow, wide, 4, 2, 1, bias=spectral)))
            if not spectral:
                layers.append(nn.BatchNorm2d(wide))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        features = widths[-1] * (h >> steps) * (w >> steps)
        self.head = norm(nn.Linear(features, 1))
        self.embed = norm(nn.Embedding(n_classes, features)) if n_classes else None
        init_weights(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        f = self.body(x)
        out = self.head(f).squeeze(1)
        if self.embed is not None and y is not None:  # the projection: how well the features match the class
            out = out + (self.embed(y) * f).sum(1)
        return out

    @staticmethod
    def configure(options: DCGANOptions, encoder: Any, n_train: int) -> dict[str, Any]:
        return {"shape": list(encoder.image_shape), "widths": options.widths, "spectral": options.spectral_norm,
                "n_classes": len(encoder.classes) if options.conditional else 0}  # fmt: skip
