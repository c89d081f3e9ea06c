"""Scores of generated images by a judge: a classifier sw2 trained on the same data (nothing can be downloaded,
so no Inception network). Its penultimate features (the convnet's pooled features, the input of its `head`)
give a Fréchet distance between the generated and the real images' feature distributions (Heusel et al., 2017's
FID with this judge instead of Inception: the numbers compare only between sw2 runs judged by the same
classifier); its class probabilities give a quality / coverage pair: the share of images it labels with
confidence >= 0.9, and the entropy of the histogram of its predicted classes (ln K for K classes equally
covered). Images without classes are judged by the features of a convnet trained to tell their turns apart
(sw2.tasks.image_judge): the Fréchet distance only, no class scores.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

CONFIDENT = 0.9
CHUNK = 500  # images judged at a time


@torch.no_grad()
def judge_images(judge: nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate features, class probabilities) of uint8 images (n x C x H x W), in float64 / float32."""
    was = judge.training
    judge.eval()
    feats: list[torch.Tensor] = []
    # the convnet's pooled features (what its head reads); another judge's head input
    pooled = getattr(judge, "pool", None)
    if pooled is not None:
        hook = pooled.register_forward_hook(lambda m, inputs, out: feats.append(out.flatten(1).double()))
    else:
        hook = judge.head.register_forward_hook(lambda m, inputs, out: feats.append(inputs[0].flatten(1).double()))
    probs = []
    device = next(judge.parameters()).device
    try:
        for chunk in pixels.split(CHUNK):
            probs.append(judge({"image": chunk.to(device)}).float().softmax(1))
    finally:
        hook.remove()
        judge.train(was)
    return torch.cat(feats).cpu(), torch.cat(probs).cpu()


def statistics(features: torch.Tensor) -> dict[str, torch.Tensor]:
    """The mean and covariance of features (n x d, float64)."""
    mu = features.mean(0)
    centred = features - mu
    return {"mu": mu, "sigma": centred.T @ centred / max(1, len(features) - 1)}


def frechet_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """||μa - μb||² + Tr(Σa + Σb - 2 (Σa Σb)^½), the trace of the root from the eigenvalues of Σa^½ Σb Σa^½."""
    vals, vecs = torch.linalg.eigh(a["sigma"])
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ b["sigma"] @ root_a).clamp_min(0).sqrt().sum()
    d = ((a["mu"] - b["mu"]) ** 2).sum() + torch.trace(a["sigma"]) + torch.trace(b["sigma"]) - 2 * cross
    return max(0.0, float(d))


def scores(judge: nn.Module, pixels: torch.Tensor, reference: dict[str, torch.Tensor], classes: bool = True
           ) -> dict[str, Any]:  # fmt: skip
    """The judge's scores of images (uint8) against the real images' feature statistics `reference`; without
    `classes` (a judge of images without classes) the Fréchet distance only."""
    feats, probs = judge_images(judge, pixels)
    distance = {"n": len(pixels), "frechet_distance": frechet_distance(statistics(feats), reference)}
    if not classes:
        return distance
    labels = probs.argmax(1)
    counts = torch.bincount(labels, minlength=probs.shape[1]).double()
    share = counts / counts.sum()
    entropy = max(0.0, float(-(share[share > 0] * share[share > 0].log()).sum()))
    return {
        **distance,
        "confident": float((probs.max(1).values >= CONFIDENT).float().mean()),
        "class_entropy": entropy,
        "class_entropy_max": math.log(probs.shape[1]),
        "class_shares": share.tolist(),
    }
