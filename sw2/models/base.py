"""What the engine, the pre-flight, the bundle and the generator may call on a model: the model contract.

Every sw2 model subclasses `Model`. It maps a batch (input name -> tensor) to outputs through a final
linear layer `head` (the loop sets its bias to the label prior, `predict` reads its width), and may
override the hooks below; their defaults do nothing, so the engine calls them without asking whether a
model has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from sw2.spec import ModelOptions


@dataclass
class ChannelGroup:
    """Channels of one hidden layer that structured pruning removes together (sw2.ship.prune_channels): the
    entries of the weights that make them (`made`: state-dict name and the dimension that indexes the channel:
    the layer's rows, its norm's entries) and of the weights that read them (`read`: the next layer's
    columns). `width` is the index in the model's `widths` kwarg that counts them; `activation` is the module
    whose output they are (their size on data tells how much they matter)."""

    width: int
    made: list[tuple[str, int]]
    read: list[tuple[str, int]]
    activation: nn.Module


def exporting() -> bool:
    """True while torch.onnx captures a model (torch.export or TorchScript tracing): data-dependent shortcuts
    (trimming padding, caches of encodings) step aside so the graph holds the plain computation."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


class Model(nn.Module):
    head: nn.Linear  # the last layer: outputs = head(features)
    options: ClassVar[type[ModelOptions]] = ModelOptions  # its `model:` options in the spec, with their defaults
    direct: ClassVar[bool] = False  # fitted by `fit_directly` (its own solver), not by the training loop

    @staticmethod
    def configure(options: Any, encoder: Any, n_train: int) -> dict[str, Any]:
        """The constructor's keyword arguments, from the spec's `options` (an instance of `options`) and the
        data: its encoder (or corpus) and the number of training examples, which size what the spec left empty.
        A model that only a program builds need not have it."""
        raise NotImplementedError(f"{type(options).__name__}: this model is not built from a spec")

    def init_from_encoder(self, encoder: Any) -> None:
        """Fit parts that come from the encoder (or corpus) itself: a tokenizer's vocabulary, say."""

    def init_from_data(self, inputs: dict[str, torch.Tensor]) -> None:
        """Fit data-dependent parts (a whitening stem, idf weights) or load pretrained weights, before training."""

    def init_from_labels(self, inputs: dict[str, torch.Tensor], target: torch.Tensor) -> None:
        """Fit label-dependent parts before training, on the training split (naive-Bayes token weights)."""

    def fit_directly(self, train: Any, discrete: bool, seed: int) -> dict[str, Any]:
        """A `direct` model's whole training: fit on `train` (a TensorSet), choosing what it chooses (a penalty,
        the number of trees) on folds of `train` itself, so that val stays a fair judge between models;
        `discrete`: the target is a class index. Returns what it chose (JSON)."""
        raise NotImplementedError(f"{type(self).__name__} is trained by the training loop")

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """A pretrained model's layer groups, bottom to top, for discriminative lrs and gradual unfreezing;
        empty for a model trained from scratch."""
        return []

    def norm_like_parameters(self) -> list[nn.Parameter]:
        """Parameters outside norm layers that train like them (norm_lr_scale, norm_weight_decay)."""
        return []

    def step(self, ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """A language model's next-token logits for `ids` (B x T) after `state` (its cache; None at first),
        and the new state: what the text generator calls. `block` (int) is then its context length."""
        raise NotImplementedError(f"{type(self).__name__} is not a language model: it cannot generate text")

    def channel_groups(self) -> list[ChannelGroup]:
        """The hidden channels structured pruning may remove, one group per layer (none: it cannot be pruned).
        A model that gives groups is rebuilt from its kwargs with smaller `widths`, the state dict sliced."""
        return []

    def set_progress(self, progress: float) -> None:
        """Told the share of training done (0..1) before each optimizer step: a model may change what trains."""
