"""The stream of a task that learns from examples: each epoch a seeded permutation of the training set (which
callbacks may thin: `prune_easy`), cut into batches gathered on the device and augmented."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from sw2.data.dataset import TensorSet
from sw2.engine.augment import alternating_flips, augment, augment_text, augmented
from sw2.engine.context import Context
from sw2.engine.trainable import Batch, Stream
from sw2.spec import AugmentSpec


class Shuffled(Stream):
    def __init__(self, train: TensorSet, aug: AugmentSpec, seed: int, batch_size: int) -> None:
        self.train, self.aug = train, aug
        self.examples, self.batch_size = len(train), max(1, min(batch_size, len(train)))
        self.device = torch.device("cpu")
        self.inputs, self.target = train.inputs, train.target
        self.images, self.text = augmented(aug, train.inputs)
        self.flip_bits = alternating_flips(len(train), seed) if aug.flip == "alternate" else None

    def to(self, device: torch.device) -> None:
        # overlapping windows (a language model's strided views) stay where they are: copied whole they would
        # take `max_tokens` times the memory; their batches are gathered there and moved
        self.device = device
        self.inputs = {k: v.to(device) if v.is_contiguous() else v for k, v in self.train.inputs.items()}
        t = self.train.target
        self.target = t.to(device) if t.is_contiguous() else t
        if self.flip_bits is not None:
            self.flip_bits = self.flip_bits.to(device)

    def shapes(self) -> dict[str, torch.Tensor]:
        return self.train.inputs

    def epoch(self, ctx: Context) -> Iterator[Batch]:
        order = ctx.reorder(torch.randperm(ctx.examples, generator=ctx.generator)).to(self.device)
        bs = self.batch_size
        for i in range(len(order) // bs):  # the last partial batch is dropped
            idx = order[i * bs : (i + 1) * bs]
            yield (*self.take(idx, ctx.epoch, ctx.generator), idx)

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
