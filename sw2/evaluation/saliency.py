"""Which inputs a prediction rests on: integrated gradients (Captum), from a black image or the train mean.

Images: one map per image, |attribution| summed over channels. Tables: the mean |attribution| of each
standardised numeric column (category columns enter through embeddings and are held fixed); a model with no
gradient to its inputs (trees) is explained by feature ablation instead: each column set to the train mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


@contextmanager
def inputs_only(model: nn.Module) -> Iterator[None]:
    """No parameter gradients while attributing (only the inputs' are needed): far less memory."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def _integrated_gradients(forward: Any) -> Any:
    """captum's IntegratedGradients, imported on first use (half a second that every command would pay)."""
    from captum.attr import IntegratedGradients

    return IntegratedGradients(forward)


def image_saliency(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, steps: int = 32) -> torch.Tensor:
    """N x H x W maps for uint8 images N x C x H x W and the classes `targets` to explain."""
    model.eval()
    ig = _integrated_gradients(lambda x: model({"image": x}))
    x = images.float()
    with inputs_only(model):
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
    with inputs_only(model), torch.enable_grad():
        probe = num[:1].clone().requires_grad_()
        smooth = forward(probe, *(inputs[k][:1] for k in others)).requires_grad
    if not smooth:  # trees: the output does not move continuously with a column
        from captum.attr import FeatureAblation

        with torch.no_grad():
            attr = FeatureAblation(forward).attribute(
                num, baselines=0.0, target=targets, additional_forward_args=tuple(inputs[k] for k in others) or None
            )
        return attr.abs().mean(0)
    big = "text" in inputs  # a text encoder per path step: small internal batches
    with inputs_only(model):
        attr = _integrated_gradients(forward).attribute(
            num,
            baselines=torch.zeros_like(num),  # standardised columns: zero is the train mean
            target=targets,
            additional_forward_args=tuple(inputs[k] for k in others) or None,
            n_steps=steps,
            internal_batch_size=len(num) if big else max(4096, len(num)),  # text: one path step at a time
        )
    return attr.abs().mean(0).detach()
