"""The training steps of task generate_image: a GAN's (two networks, two optimizers, one batch each) and a
diffusion model's (one network learning to predict noise). Both keep an exponential moving average of the
generating network's weights (the `ema` module), which samples are drawn from."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.engine.context import Context
from sw2.engine.optim import lr_factor, make_optimizer
from sw2.engine.step import TrainStep
from sw2.spec import TrainSpec

NO_CLASS_SHARE = 0.1  # a conditional diffusion model learns without its class this often (classifier-free guidance)


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> floats in [-1, 1]."""
    return image.float() / 127.5 - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Floats in [-1, 1] -> uint8 pixels 0..255."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def ema_decay(decay: float, step: int) -> float:
    """The EMA's decay at training step `step` (from 0): `decay`, less while few steps are averaged
    ((1 + step) / (10 + step), as TensorFlow's ExponentialMovingAverage with num_updates), so that the initial
    weights do not linger (0.999 ** 860 = 0.42 of them after two epochs of MNIST without it)."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for the weights; the buffers (batch-norm statistics) copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def optimizer_for(module: nn.Module, train: TrainSpec, name: str, lr: float, betas: tuple[float, float]) -> Any:
    """The registered optimizer `name` at `lr` for `module`, Adam's betas set where it has them."""
    opt = make_optimizer(module, train.model_copy(update={"optimizer": name, "lr": lr}))
    for group in opt.param_groups:
        if "betas" in group:
            group["betas"] = betas
    return opt


class GANStep(TrainStep):
    """One discriminator update on a real and a generated batch, then one generator update on a fresh noise
    batch. Losses: non-saturating (BCE with logits; real labels 1 - label_smoothing) or hinge. Each network
    has its own optimizer and constant lr (TTUR); `train.warmup` and `train.schedule` do not apply."""

    def __init__(self, modules: dict[str, nn.Module], options: Any, train: TrainSpec) -> None:
        self.g, self.d, self.ema = modules["generator"], modules["discriminator"], modules.get("ema")
        self.o, self.train_spec = options, train
        self.optimizers = {
            "generator": optimizer_for(self.g, train, options.generator_optimizer, options.generator_lr, options.betas),
            "discriminator": optimizer_for(
                self.d, train, options.discriminator_optimizer, options.discriminator_lr, options.betas
            ),
        }
        self.sums: dict[str, Any] = {"d_loss": 0.0, "g_loss": 0.0, "steps": 0}
        self.calls = 0  # steps taken by this object (not restored on resume): tells evaluations apart

    def epoch_losses(self) -> dict[str, float]:
        """The two networks' mean losses since the last call (the epoch's, for the history), then reset."""
        steps = max(1, self.sums["steps"])
        out = {k: float(self.sums[k]) / steps for k in ("d_loss", "g_loss")}
        self.sums = {"d_loss": 0.0, "g_loss": 0.0, "steps": 0}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.o.loss == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        ones = torch.full_like(real, 1.0 - self.o.label_smoothing)
        return F.binary_cross_entropy_with_logits(real, ones) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )

    def _g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.o.loss == "hinge":
            return -fake.mean()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # non-saturating

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        self.calls += 1
        real = to_unit(batch["image"])
        n = len(real)
        y = target.long() if self.o.conditional else None
        gd, go = self.optimizers["discriminator"], self.optimizers["generator"]
        z = torch.randn(n, self.g.latent, generator=ctx.generator).to(real.device)
        with torch.autocast(ctx.device.type, dtype=ctx.autocast or torch.float32, enabled=ctx.autocast is not None):
            with torch.no_grad():
                fake = self.g(z, y)
            d_loss = self._d_loss(self.d(real, y).float(), self.d(fake, y).float())
        gd.zero_grad(set_to_none=True)
        d_loss.backward()
        gd.step()
        z = torch.randn(n, self.g.latent, generator=ctx.generator).to(real.device)
        with torch.autocast(ctx.device.type, dtype=ctx.autocast or torch.float32, enabled=ctx.autocast is not None):
            g_loss = self._g_loss(self.d(self.g(z, y), y).float())
        go.zero_grad(set_to_none=True)
        g_loss.backward()
        self.d.zero_grad(set_to_none=True)  # the generator's backward left gradients in the discriminator
        go.step()
        if self.ema is not None:
            update_ema(self.ema, self.g, ema_decay(self.o.ema, ctx.step))
        self.sums["d_loss"] = self.sums["d_loss"] + d_loss.detach().float()  # on the device: no sync a step
        self.sums["g_loss"] = self.sums["g_loss"] + g_loss.detach().float()
        self.sums["steps"] += 1
        return (d_loss + g_loss).detach()


class DiffusionStep(TrainStep):
    """ε-prediction: a noise level t drawn uniformly from 1..T per image, x_t from the closed-form forward
    process, the MSE between the predicted and the true noise; the spec's optimizer, lr, warm-up and schedule."""

    def __init__(self, modules: dict[str, nn.Module], options: Any, train: TrainSpec) -> None:
        self.net, self.ema = modules["generator"], modules.get("ema")
        self.o, self.train_spec = options, train
        self.optimizer = make_optimizer(self.net, train)
        self.calls = 0  # steps taken by this object (not restored on resume): tells evaluations apart

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        self.calls += 1
        base = float(self.train_spec.lr) * lr_factor(self.train_spec, ctx.progress)
        for group in self.optimizer.param_groups:
            group["lr"] = base * group["lr_scale"]
        x0 = to_unit(batch["image"])
        n, gen = len(x0), ctx.generator
        t = torch.randint(1, self.net.timesteps + 1, (n,), generator=gen).to(x0.device)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        y = None
        if self.o.conditional:
            drop = torch.rand(n, generator=gen).to(x0.device) < NO_CLASS_SHARE
            y = torch.where(drop, self.net.n_classes, target.long())
        with torch.autocast(ctx.device.type, dtype=ctx.autocast or torch.float32, enabled=ctx.autocast is not None):
            loss = F.mse_loss(self.net(self.net.noised(x0, t, noise), t, y).float(), noise)
        (loss / ctx.accumulate).backward()
        if ctx.updates:
            if self.train_spec.grad_clip:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.train_spec.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None:
                update_ema(self.ema, self.net, ema_decay(self.o.ema, ctx.step))
        return loss.detach()
