"""What the net sees: one training batch exactly as the model receives it (Karpathy: "visualize just
before the net"). Images: the augmented uint8 batch (sw2's conv nets normalise inside the model, with
the train split's mean/std) as a PNG grid with labels. Tables: the encoded feature values of the first
rows, and the tokens of text columns, as CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from sw2.data.dataset import Prepared
from sw2.data.text import tokens
from sw2.engine.augment import augment, augment_text, is_active, text_active
from sw2.evaluation import plots
from sw2.spec import Spec


def what_the_net_sees(spec: Spec, p: Prepared, folder: Path, n: int = 32) -> Path:
    enc, batch = p.encoder, {k: v[:n] for k, v in p.train.inputs.items()}
    raw = p.raw_train.target[:n]  # the labels as given (p.train is raw_train encoded, in order)
    labels = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in raw.tolist()]
    if "image" in batch:
        x = batch["image"]
        if is_active(spec.augment):
            x = augment(x, spec.augment, torch.Generator().manual_seed(spec.train.seed))
        path = folder / "what_the_net_sees.png"
        title = "one training batch as the model receives it (augmented uint8; the model normalises inside)"
        plots.image_grid(x.numpy(), labels, path, title)
        return path
    columns = {}
    for i, c in enumerate(enc.numeric):
        columns[f"{c['name']} (standardised)"] = batch["num"][:, i].numpy()
    for i, c in enumerate(enc.categories):
        columns[f"{c['name']} (index)"] = batch["cat"][:, i].numpy()
    if "text" in batch:  # the tokens exactly as the model gets them (after augmentation, if any)
        ids = batch["text"]
        if text_active(spec.augment):
            ids = augment_text(ids, spec.augment, torch.Generator().manual_seed(spec.train.seed))
        assert enc.tokenizer is not None
        columns["text (tokens)"] = [" ".join(tokens(enc.tokenizer, row)) for row in ids.tolist()]
    columns["target"] = labels
    path = folder / "what_the_net_sees.csv"
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.4f")
    return path
