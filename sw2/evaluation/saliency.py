"""Which inputs a prediction rests on: integrated gradients (Captum), from a black image or the train mean.

Images: one map per image, |attribution| summed over channels. Tables: the mean |attribution| of each
standardised numeric column (category columns enter through embeddings and are held fixed).
"""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients
from torch import nn


def image_saliency(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, steps: int = 32) -> torch.Tensor:
    """N x H x W maps for uint8 images N x C x H x W and the classes `targets` to explain."""
    model.eval()
    ig = IntegratedGradients(lambda x: model({"image": x}))
    x = images.float()
    attr = ig.attribute(x, baselines=torch.zeros_like(x), target=targets, n_steps=steps, internal_batch_size=256)
    return attr.abs().sum(1).detach()


def column_saliency(
    model: nn.Module, inputs: dict[str, torch.Tensor], targets: torch.Tensor, steps: int = 32
) -> torch.Tensor:
    """Mean |attribution| per numeric column; `targets` the class (or 0 for regression) of each row."""
    model.eval()
    others = [k for k in inputs if k != "num"]  # passed through, expanded along the path by Captum

    def forward(num: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return model({"num": num, **dict(zip(others, rest))})

    num = inputs["num"].float()
    attr = IntegratedGradients(forward).attribute(
        num,
        baselines=torch.zeros_like(num),  # standardised columns: zero is the train mean
        target=targets,
        additional_forward_args=tuple(inputs[k] for k in others) or None,
        n_steps=steps,
        internal_batch_size=4096,
    )
    return attr.abs().mean(0).detach()
