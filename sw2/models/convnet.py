"""A fast conv-BN family for images, in the spirit of airbench.

Each stage is conv -> max-pool -> BN -> activation, then (depth - 1) more conv-BN-activation layers:
pooling right after the first conv runs BN and the activation on a quarter of the pixels.

The input is the raw uint8 image; normalisation (train-split mean/std) happens inside the model, so
batches stay uint8 in memory and a bundle needs no separate image preprocessing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sw2.data.encode import Encoder
from sw2.models.registry import MODELS
from sw2.spec import ModelSpec

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def conv_bn(c_in: int, c_out: int, activation: str) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), ACTIVATIONS[activation]()]


@MODELS.register("convnet")
class ConvNet(nn.Module):
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
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("inv_std", 1 / torch.tensor(std).view(1, -1, 1, 1))
        self.channels_last = channels_last
        layers: list[nn.Module] = []
        c, size = in_shape[0], min(in_shape[1:])
        for w in widths:
            conv, bn, act = conv_bn(c, w, activation)
            layers += [conv, nn.MaxPool2d(2), bn, act] if size >= 2 else [conv, bn, act]
            size //= 2
            for _ in range(depth - 1):
                layers += conv_bn(w, w, activation)
            c = w
        self.body = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(c, n_out)
        if channels_last:  # weights and activations in NHWC: the fast layout for CPU convolutions
            self.to(memory_format=torch.channels_last)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = (batch["image"].float() - self.mean) * self.inv_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.pool(self.body(x)))

    @staticmethod
    def configure(spec: ModelSpec, encoder: Encoder, n_train: int) -> dict[str, Any]:
        assert encoder.image_shape is not None
        c, h, w = encoder.image_shape
        stages = max(1, min(4, int(math.log2(min(h, w))) - 1))
        base = 16 if n_train < 100_000 and h * w <= 1024 else 32
        widths = spec.widths or [base * 2**i for i in range(stages)]
        return {
            "in_shape": encoder.image_shape,
            "n_out": encoder.n_outputs,
            "mean": encoder.image_mean,
            "std": encoder.image_std,
            "widths": widths,
            "depth": spec.depth or 1,
            "activation": spec.activation,
        }
