"""A fast conv-BN family for images, in the spirit of airbench.

    [whitening stem]  a frozen 2x2 conv whose filters whiten the training images' 2x2 patches
    stage x len(widths): conv -> max-pool -> BN -> act, then (depth - 1) x (conv -> BN -> act)
    global max-pool -> linear head (logits times `logit_scale`, before the bias; airbench uses 1/9)

Pooling right after the first conv of a stage runs BN and the activation on a quarter of the pixels.
As in airbench, BN has no learnable scale (only a shift) and a fast-moving running average, convs start
as identities on their first input channels (dirac), and the stem's filters come from the data
(`init_from_data`, called once before training on the training images); the stem's shift learns for the
first `whiten_shift_until` of training only, after which the body's first conv computes no input gradient.

The input is the raw uint8 image; normalisation (train-split mean/std) happens inside the model, so
batches stay uint8 in memory and a bundle needs no separate image preprocessing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.model_options import ConvNetOptions
from sw2.models.base import ChannelGroup, Model
from sw2.plugins import MODELS

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class Norm(nn.BatchNorm2d):
    """BatchNorm with a fixed unit scale and a learnable shift; running stats follow recent batches."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, momentum=0.6)
        self.weight.requires_grad_(False)


class Conv(nn.Conv2d):
    """3x3 'same' conv without bias, initialised as the identity on its first input channels.

    With `for_pool`, a 2x2 max-pool follows, which drops the last row (column) of an odd-sized map; the conv
    then computes only the rows and columns the pool keeps (padding 1 before, 0 after): the same numbers
    as the 'same' conv up to float rounding, and 27% fewer positions on a 7x7 map. `stage` sets it exactly
    where a floor-mode 2x2 max-pool follows."""

    def __init__(self, c_in: int, c_out: int, for_pool: bool = False) -> None:
        super().__init__(c_in, c_out, 3, padding=1, bias=False)
        self.for_pool = for_pool
        with torch.no_grad():
            nn.init.dirac_(self.weight[: min(c_in, c_out)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if not self.for_pool or (h % 2 == 0 and w % 2 == 0):
            return super().forward(x)
        return F.conv2d(F.pad(x, (1, 1 - w % 2, 1, 1 - h % 2)), self.weight)  # the pad keeps the memory format


def stage(c_in: int, c_out: int, depth: int, pool: bool, activation: str) -> list[nn.Module]:
    act = ACTIVATIONS[activation]
    layers = [Conv(c_in, c_out, for_pool=pool), *([nn.MaxPool2d(2)] if pool else []), Norm(c_out), act()]
    for _ in range(depth - 1):
        layers += [Conv(c_out, c_out), Norm(c_out), act()]
    return layers


def whitening_filters(images: torch.Tensor, n_filters: int, eps: float = 5e-4) -> torch.Tensor:
    """2x2 filters that whiten the patches of normalised images (N x C x H x W), as +/- pairs of the
    covariance's leading eigenvectors scaled by 1/sqrt(eigenvalue)."""
    c = images.shape[1]
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)
    cov = (patches.T @ patches).double() / len(patches)  # a float32 matmul; the eigen-solve in float64
    eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
    k = n_filters // 2
    top = eigvecs[:, -k:].flip(1).T / torch.sqrt(eigvals[-k:].flip(0) + eps).unsqueeze(1)
    filters = top.reshape(k, c, 2, 2).float()
    return torch.cat([filters, -filters])


class Whiten(nn.Module):
    """A frozen 2x2 'valid' conv (filters from `whitening_filters`) plus a learnable shift, then the activation.

    The shift is added outside the conv: a conv bias would make the backward pass compute the frozen
    filters' gradient too (measured: 10.5 ms against 6 ms a batch of 256 CIFAR images)."""

    def __init__(self, c_in: int, c_out: int, activation: str) -> None:
        super().__init__()
        self.register_buffer("filters", torch.zeros(c_out, c_in, 2, 2))
        self.shift = nn.Parameter(torch.zeros(c_out))
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.conv2d(x, self.filters) + self.shift.view(1, -1, 1, 1))


@MODELS.register("convnet")
class ConvNet(Model):
    options = ConvNetOptions

    def __init__(
        self,
        in_shape: list[int],
        n_out: int,
        mean: list[float],
        std: list[float],
        widths: list[int],
        depth: int = 1,
        dropout: float = 0.0,
        activation: str = "gelu",
        whiten: int = 0,
        whiten_shift_until: float = 0.3,
        logit_scale: float = 1.0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.logit_scale, self.depth = logit_scale, depth
        self.whiten_shift_until = whiten_shift_until
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("inv_std", 1 / torch.tensor(std).view(1, -1, 1, 1))
        self.channels_last = channels_last
        c, size = in_shape[0], min(in_shape[1:])
        self.stem: nn.Module = nn.Identity()
        if whiten:
            self.stem = Whiten(c, whiten, activation)
            c, size = whiten, size - 1
        layers: list[nn.Module] = []
        for w in widths:
            layers += stage(c, w, depth, size >= 2, activation)
            c, size = w, size // 2
        self.body = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(c, n_out)
        if channels_last:  # weights and activations in NHWC: the fast layout for CPU convolutions
            self.to(memory_format=torch.channels_last)

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        x = (image.float() - self.mean) * self.inv_std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.pool(self.body(self.stem(self.normalise(batch["image"]))))
        return F.linear(x, self.head.weight) * self.logit_scale + self.head.bias

    def norm_like_parameters(self) -> list[nn.Parameter]:
        """The stem's shift trains like the norm layers' shifts (`norm_lr_scale`, `norm_weight_decay`), as
        airbench trains the whitening bias with the norm biases."""
        return [self.stem.shift] if isinstance(self.stem, Whiten) else []

    def set_progress(self, progress: float) -> None:
        """Called by the training loop with the share of training done: the stem's shift stops learning at
        `whiten_shift_until`, and from then on the body's first conv no longer computes its input gradient
        (a lookahead still pulls the shift onto its slow copy once)."""
        if isinstance(self.stem, Whiten):
            self.stem.shift.requires_grad_(progress < self.whiten_shift_until)

    def channel_groups(self) -> list[ChannelGroup]:
        """Each body conv's output channels: its filters, its norm's entries, and the next conv's (or the
        head's) input channels; the convs of stage s count `widths[s]` (the stem's few channels stay)."""
        convs = [i for i, m in enumerate(self.body) if isinstance(m, Conv)]
        groups = []
        for k, i in enumerate(convs):
            norm = next(j for j in range(i, len(self.body)) if isinstance(self.body[j], Norm))
            made = [(f"body.{i}.weight", 0)]
            made += [(f"body.{norm}.{n}", 0) for n in ("weight", "bias", "running_mean", "running_var")]
            read = [(f"body.{convs[k + 1]}.weight", 1)] if k + 1 < len(convs) else [("head.weight", 1)]
            groups.append(ChannelGroup(k // self.depth, made, read, self.body[norm + 1]))
        return groups

    @torch.no_grad()
    def init_from_data(self, inputs: dict[str, torch.Tensor], max_images: int = 5000) -> None:
        """Fit the whitening stem to a random sample of the training images (no-op without a stem); the
        training split is ordered by class, so its first images would all be of one class."""
        if isinstance(self.stem, Whiten):
            images = inputs["image"]
            pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:max_images]
            x = self.normalise(images[pick]).contiguous()
            self.stem.filters.copy_(whitening_filters(x, len(self.stem.filters)))
            self.stem.shift.zero_()

    @staticmethod
    def configure(spec: ConvNetOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        assert encoder.image_shape is not None
        c, h, w = encoder.image_shape
        stages = max(1, min(4, int(math.log2(min(h, w))) - 1))
        base = 16 if n_train < 100_000 and h * w <= 1024 else 32
        widths = spec.widths or [base * 2**i for i in range(stages)]
        if spec.whiten > 8 * c:
            raise UserError(f"model.whiten: at most {8 * c} for {c}-channel images (got {spec.whiten}); lower it")
        return {
            "in_shape": encoder.image_shape,
            "n_out": encoder.n_outputs,
            "mean": encoder.image_mean,
            "std": encoder.image_std,
            "widths": widths,
            "depth": spec.depth or 1,
            "activation": spec.activation,
            "whiten": spec.whiten,
            "whiten_shift_until": spec.whiten_shift_until,
            "logit_scale": spec.logit_scale,
        }
