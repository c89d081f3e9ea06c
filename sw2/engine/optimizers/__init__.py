"""Optimizers as plug-ins: each module of this package registers one or more in `sw2.plugins.OPTIMIZERS`,
and each name it registers is at once a valid `train.optimizer` (refused with "did you mean" when
misspelt, listed in the JSON schema). A new optimizer is one new file here, its names declared in
`sw2.plugins` (so that the spec knows them without importing torch).

A registered optimizer is a function `(model, groups, train) -> torch.optim.Optimizer`. `groups` are the
model's parameter groups as `sw2.engine.optim.make_optimizer` built them: dicts with `params`, `lr`,
`lr_scale` (the loop sets each group's lr to the scheduled lr times it) and `weight_decay`, which already
carry the spec's per-parameter rules (no decay on biases, norm layers' lr and decay, layer-wise lrs). The
function may regroup parameters it treats its own way, keeping those keys (muon does, for conv kernels).
Its hyper-parameters are read from the train spec (`train.momentum`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sw2.spec import TrainSpec

OptimizerFactory = Callable[[nn.Module, list[dict[str, Any]], TrainSpec], torch.optim.Optimizer]
