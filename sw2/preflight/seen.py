"""What the net sees: one training batch exactly as the model receives it (Karpathy: "visualize just
before the net"). Images: the augmented batch, normalised as the model does and decoded back to pixels,
as a PNG grid with labels. Tables: the encoded feature values of the first rows, as CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from sw2.data.dataset import Prepared
from sw2.engine.augment import augment, is_active
from sw2.evaluation import plots
from sw2.spec import Spec


def what_the_net_sees(spec: Spec, p: Prepared, folder: Path, n: int = 32) -> Path:
    enc, batch = p.encoder, {k: v[:n] for k, v in p.train.inputs.items()}
    labels = [str(enc.classes[int(y)]) if enc.classes else f"{float(y):.2f}" for y in p.train.target[:n]]
    if "image" in batch:
        x = batch["image"]
        if is_active(spec.augment):
            x = augment(x, spec.augment, torch.Generator().manual_seed(spec.train.seed))
        mean = torch.tensor(enc.image_mean).view(1, -1, 1, 1)
        std = torch.tensor(enc.image_std).view(1, -1, 1, 1)
        normalised = (x.float() - mean) / std  # what the first layer receives
        pixels = (normalised * std + mean).round().clamp(0, 255).to(torch.uint8)
        path = folder / "what_the_net_sees.png"
        plots.image_grid(
            pixels.numpy(), labels, path, "one training batch as the net sees it (augmented, normalised, decoded)"
        )
        return path
    columns = {}
    for i, c in enumerate(enc.numeric):
        columns[f"{c['name']} (standardised)"] = batch["num"][:, i].numpy()
    for i, c in enumerate(enc.categories):
        columns[f"{c['name']} (index)"] = batch["cat"][:, i].numpy()
    columns["target"] = labels
    path = folder / "what_the_net_sees.csv"
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.4f")
    return path
