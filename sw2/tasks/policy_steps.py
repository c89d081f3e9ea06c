"""The updates of task control: PPO's clipped surrogate over a rollout's minibatches, and DQN's (double) Q-learning
on minibatches from the replay buffer. Each step owns its optimizer (the spec's train.optimizer at train.lr
and its schedule) and its random stream, both in the checkpoint; `stats` are the last update's figures, which
the task's `evaluate` adds to the history."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sw2.engine.context import Context
from sw2.engine.optim import lr_factor, make_optimizer
from sw2.engine.step import TrainStep
from sw2.errors import UserError
from sw2.spec import Spec


class PolicyStep(TrainStep):
    def __init__(self, net: nn.Module, spec: Spec) -> None:
        if spec.train.lr == "auto":
            raise UserError("train.lr: auto sweeps a supervised loss, which task control lacks; give a number")
        self.net, self.train_spec, self.o = net, spec.train, spec.model
        self.optimizer = make_optimizer(net, spec.train)
        self.generator = torch.Generator().manual_seed(spec.train.seed + 1)  # minibatch order
        self.stats: dict[str, float] = {}
        self.lr = float(spec.train.lr)

    def set_lr(self, ctx: Context) -> None:
        self.lr = float(self.train_spec.lr) * lr_factor(self.train_spec, ctx.progress)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group["lr_scale"]

    def update(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.o.max_grad_norm)
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


class PPOStep(PolicyStep):
    """`n_epochs` passes over the rollout in minibatches of train.batch_size: the clipped policy loss, the
    (optionally clipped) value loss times `vf_coef`, minus `ent_coef` times the entropy."""

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        self.set_lr(ctx)
        net, o = self.net, self.o
        clip = o.clip_range * (max(0.0, 1.0 - ctx.progress) if o.clip_decay else 1.0)
        n, mb = len(batch["obs"]), self.train_spec.batch_size
        sums: dict[str, float] = {}
        count = 0
        for _ in range(o.n_epochs):
            order = torch.randperm(n, generator=self.generator).to(batch["obs"].device)
            for start in range(0, n, mb):
                i = order[start : start + mb]
                logp, entropy, value = net.evaluate(batch["obs"][i], batch["actions"][i])
                log_ratio = logp - batch["logp"][i]
                ratio = log_ratio.exp()
                adv = batch["advantages"][i]
                if o.normalize_advantage and len(i) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                if o.clip_range_vf is not None:
                    old = batch["values"][i]
                    value = old + (value - old).clamp(-o.clip_range_vf, o.clip_range_vf)
                value_loss = F.mse_loss(value, batch["returns"][i])
                entropy = entropy.mean()
                loss = policy_loss + o.vf_coef * value_loss - o.ent_coef * entropy
                self.update(loss)
                with torch.no_grad():
                    kl = ((ratio - 1) - log_ratio).mean().item()
                    frac = ((ratio - 1).abs() > clip).float().mean().item()
                figures = {"loss": loss.item(), "policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                           "entropy": entropy.item(), "approx_kl": kl, "clip_fraction": frac}  # fmt: skip
                for k, v in figures.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        returns, values = batch["returns"], batch["values"]
        explained = 1 - (returns - values).var() / returns.var().clamp_min(1e-8)
        self.stats = {k: v / count for k, v in sums.items()} | {"explained_variance": float(explained),
                                                                "clip_range": clip, "lr": self.lr}  # fmt: skip
        return torch.tensor(self.stats["loss"])


class DQNStep(PolicyStep):
    """`gradient_steps` updates of the Huber loss between Q(s, a) and r + gamma * Q_target(s', a') (a' the online
    network's argmax with `double`, else the target's), the target network a copy refreshed (or moved by `tau`)
    every `target_update_interval` environment steps."""

    def __init__(self, net: nn.Module, spec: Spec) -> None:
        super().__init__(net, spec)
        self.target = copy.deepcopy(net).requires_grad_(False)
        self.synced_at = 0  # environment steps at the last target update

    def to(self, device: torch.device) -> None:
        self.target.to(device)

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        self.set_lr(ctx)
        net, o, mb = self.net, self.o, self.train_spec.batch_size
        losses = []
        if len(batch["obs"]):  # the target network scales observations as the online one does
            self.target.normalizer.load_state_dict(net.normalizer.state_dict())
        for start in range(0, len(batch["obs"]), mb):
            b = {k: v[start : start + mb] for k, v in batch.items() if k != "env_steps"}
            with torch.no_grad():
                after = self.target.values(b["next_obs"])
                pick = net.values(b["next_obs"]).argmax(1, keepdim=True) if o.double else after.argmax(1, keepdim=True)
                goal = b["rewards"] + o.gamma * (1 - b["terminated"]) * after.gather(1, pick)[:, 0]
            q = net.values(b["obs"]).gather(1, b["actions"][:, None])[:, 0]
            loss = F.smooth_l1_loss(q, goal)
            self.update(loss)
            losses.append(loss.item())
        steps = int(batch["env_steps"])
        due = (steps - self.synced_at) // o.target_update_interval  # intervals passed since the last update
        if due:
            keep = (1 - o.tau) ** due  # `due` soft updates towards the same weights at once
            with torch.no_grad():
                for t, p in zip(self.target.parameters(), net.parameters()):
                    t.mul_(keep).add_(p.detach(), alpha=1 - keep)
            self.synced_at = steps - steps % o.target_update_interval
        self.stats = {"loss": sum(losses) / len(losses) if losses else 0.0, "lr": self.lr}
        return torch.tensor(self.stats["loss"])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target": self.target.state_dict(), "synced_at": self.synced_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.target.load_state_dict(state["target"])
        self.synced_at = int(state["synced_at"])
