"""The training set on the device, and a batch of it as a step sees it: gathered by index and augmented."""

from __future__ import annotations

import torch

from sw2.data.dataset import TensorSet
from sw2.engine.augment import alternating_flips, augment, augment_text, augmented
from sw2.spec import AugmentSpec


class Batches:
    def __init__(self, train: TensorSet, aug: AugmentSpec, seed: int, device: torch.device) -> None:
        # overlapping windows (a language model's strided views) stay where they are: copied whole they would
        # take `max_tokens` times the memory; their batches are gathered there and moved
        self.inputs = {k: v.to(device) if v.is_contiguous() else v for k, v in train.inputs.items()}
        self.target = train.target.to(device) if train.target.is_contiguous() else train.target
        self.aug, self.device = aug, device
        self.images, self.text = augmented(aug, self.inputs)
        self.flip_bits = alternating_flips(len(train), seed).to(device) if aug.flip == "alternate" else None

    def take(self, idx: torch.Tensor, epoch: int, gen: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(inputs, target) of the examples `idx` (on the device) in epoch `epoch`, augmented with draws from
        `gen`."""
        batch = {k: v[idx.to(v.device)].to(self.device, non_blocking=True) for k, v in self.inputs.items()}
        if self.images:
            flips = None if self.flip_bits is None else self.flip_bits[idx] ^ bool(epoch % 2)
            batch["image"] = augment(batch["image"], self.aug, gen, flips)
        if self.text:
            batch["text"] = augment_text(batch["text"], self.aug, gen)
        return batch, self.target[idx.to(self.target.device)].to(self.device)
