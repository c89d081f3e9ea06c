"""Adversarial examples and adversarial training, for any model of examples: the loss's gradient with respect
to the float inputs (an image's pixels, a table's standardised numbers) climbed within an L-infinity ball.

`perturb` finds them (FGSM or PGD, each from a random start in the ball: Madry et al., 2018; Wong et al.,
2020); `AdversarialStep`, the supervised step's subclass that `train.adversarial` selects (sw2/tasks/learn.py),
trains on them. `sw2 attack` (sw2/evaluation/attack.py) measures a bundle under the same attack.

Scales. An image input holds pixels 0..255 (the model normalises inside), so a radius `eps` given for pixels in
[0, 1] is `eps * 255` there, and perturbed pixels stay within 0..255. A table's "num" input is already
standardised: `eps` is in those units, unclipped. Integer inputs (categories, tokens) are left as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sw2.engine.context import Context
from sw2.engine.step import SupervisedStep
from sw2.errors import UserError

PIXEL_SCALE = {"image": 255.0}  # input name -> the raw value of 1.0 on eps's scale (and its upper bound)


def attacked(batch: dict[str, torch.Tensor]) -> list[str]:
    """The inputs an attack perturbs: images and float (numeric) tensors."""
    return [k for k, v in batch.items() if k == "image" or v.is_floating_point()]


def perturb(
    model: nn.Module,
    loss_of: Any,
    batch: dict[str, torch.Tensor],
    target: torch.Tensor,
    method: str,
    eps: float,
    steps: int = 1,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """`batch` with its float inputs moved within `eps` (L-infinity, per input's scale) to raise
    `loss_of(outputs, target)`: `steps` signed-gradient steps of `alpha` from a uniform random start (FGSM: one
    step). The model's mode is the caller's; its parameters get no gradient."""
    names = attacked(batch)
    if not names:
        raise UserError(
            "train.adversarial: this model's inputs (text, categories) have no numbers to perturb; remove it"
        )
    steps = 1 if method == "fgsm" else steps
    alpha = alpha if alpha is not None else (1.25 * eps if method == "fgsm" else 2.5 * eps / steps)
    out = dict(batch)
    bounds = {}
    for k in names:
        x = batch[k].float()
        scale = PIXEL_SCALE.get(k, 1.0)
        start = (torch.rand(x.shape, generator=generator).to(x.device) * 2 - 1) * eps * scale
        bounds[k] = (x, eps * scale, alpha * scale, scale if k in PIXEL_SCALE else None)
        out[k] = _clip(x + start, x, eps * scale, bounds[k][3])
    for _ in range(steps):
        for k in names:
            out[k] = out[k].detach().requires_grad_(True)
        loss = loss_of(model(out), target)
        grads = torch.autograd.grad(loss, [out[k] for k in names])
        with torch.no_grad():
            for k, g in zip(names, grads):
                x, radius, step, top = bounds[k]
                out[k] = _clip(out[k] + step * g.sign(), x, radius, top)
    return {k: (v.detach() if k in names else v) for k, v in out.items()}


def _clip(x_adv: torch.Tensor, x: torch.Tensor, radius: float, top: float | None) -> torch.Tensor:
    x_adv = torch.max(torch.min(x_adv, x + radius), x - radius)
    return x_adv.clamp(0.0, top) if top is not None else x_adv


class AdversarialStep(SupervisedStep):
    """The supervised step on each batch's adversarial version (`train.adversarial`), found with the model in
    eval mode (batch norm's statistics are not moved by the attack) and the step's own random stream (in the
    checkpoint, for an exact resume)."""

    def __init__(self, model: nn.Module, task: Any, train: Any) -> None:
        super().__init__(model, task, train)
        self.adv = train.adversarial
        self.generator = torch.Generator().manual_seed(train.seed + 7)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        modes = [(m, m.training) for m in self.model.modules()]  # a frozen part may be in eval mode on purpose
        self.model.eval()
        a = self.adv
        worse = perturb(self.model, self.task.loss, batch, target, a.method, a.eps, a.steps, a.alpha, self.generator)
        for m, training in modes:
            m.train(training)
        return super().__call__(worse, target, idx, ctx)
