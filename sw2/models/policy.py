"""Policies of task control: PPO's actor-critic and DQN's Q-network, MLPs over flattened observations.

Both start with a `Normalizer`: running mean and variance of the observations (Stable-Baselines3's
VecNormalize), buffers of the network, so the bundle, `predict`, the server and the ONNX graph all scale an
observation as training did. `forward({"obs": x})` is the deterministic policy's output: PPO's action logits
(discrete) or action means (continuous, before clipping to the bounds), DQN's action values; the task reads the
action from it (argmax, or the mean). Initialisation as SB3's: orthogonal, gain sqrt(2) in hidden layers, 0.01
for the policy's head, 1 for the value's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sw2.model_options import DQNOptions, PPOOptions
from sw2.models.base import Model
from sw2.plugins import MODELS

CLIP_OBS = 10.0  # normalised observations are clipped to +-this (VecNormalize's clip_obs)
EPS = 1e-8


class Normalizer(nn.Module):
    """x -> (x - mean) / sqrt(var + eps), clipped, with mean and var of every observation seen (`update`); the
    identity where `enabled` is False."""

    def __init__(self, size: int, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch's moments into the running ones (Chan et al.'s parallel algorithm)."""
        if not self.enabled:
            return
        x = x.reshape(len(x), -1).double()
        b_mean, b_var, b_n = x.mean(0), x.var(0, unbiased=False), len(x)
        delta, total = b_mean - self.mean, self.count + b_n
        m2 = self.var * self.count + b_var * b_n + delta.square() * self.count * b_n / total
        self.mean += delta * b_n / total
        self.var.copy_(m2 / total)
        self.count.fill_(total.item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        scaled = (x - self.mean.float()) / torch.sqrt(self.var.float() + EPS)
        return scaled.clamp(-CLIP_OBS, CLIP_OBS)


def mlp(sizes: list[int], activation: str, out: int, gain: float) -> nn.Sequential:
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(sizes[-1], out))
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain if m is layers[-1] else math.sqrt(2))
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


@MODELS.register("ppo")
class ActorCritic(Model):
    """An actor (`pi`: logits, or the means of a Gaussian with a state-independent `log_std`) and a critic
    (`vf`: the state's value), separate MLPs of `hidden` sizes."""

    options = PPOOptions

    def __init__(
        self,
        obs_size: int,
        actions: int,
        continuous: bool = False,
        hidden: list[int] | None = None,
        activation: str = "tanh",
        normalize: bool = False,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = [obs_size, *(hidden or [64, 64])]
        self.continuous = continuous
        self.normalizer = Normalizer(obs_size, normalize)
        self.pi = mlp(sizes, activation, actions, 0.01)
        self.vf = mlp(sizes, activation, 1, 1.0)
        self.head = self.pi[-1]  # type: ignore[assignment]
        self.log_std = nn.Parameter(torch.full((actions,), float(log_std_init))) if continuous else None

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.pi(self.normalizer(inputs["obs"]))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(self.normalizer(obs))[:, 0]

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """An action per observation drawn with `generator` (an exact resume replays it), and its log-prob."""
        out = self.pi(self.normalizer(obs))
        # drawn on the CPU, where `generator` lives, whatever the device: the same draws on any machine
        if self.continuous:
            std = self.log_std.exp().expand_as(out)  # type: ignore[union-attr]
            action = out + std * torch.randn(out.shape, generator=generator).to(out.device)
            return action, self._gaussian_log_prob(out, action)
        action = torch.multinomial(torch.softmax(out, -1).cpu(), 1, generator=generator)[:, 0].to(out.device)
        return action, torch.log_softmax(out, -1).gather(1, action[:, None])[:, 0]

    def evaluate(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-prob of `action`, the policy's entropy, the state's value) per observation: PPO's update, in
        closed form (torch.distributions' argument checks cost more than the maths on small networks)."""
        x = self.normalizer(obs)
        out, value = self.pi(x), self.vf(x)[:, 0]
        if self.continuous:
            log_std = self.log_std.expand_as(out)  # type: ignore[union-attr]
            entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1)
            return self._gaussian_log_prob(out, action), entropy, value
        logp = torch.log_softmax(out, -1)
        return logp.gather(1, action.long()[:, None])[:, 0], -(logp.exp() * logp).sum(-1), value

    def _gaussian_log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        log_std = self.log_std.expand_as(mean)  # type: ignore[union-attr]
        z = (action - mean) / log_std.exp()
        return (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


@MODELS.register("dqn")
class QNetwork(Model):
    """Each action's value: an MLP of `hidden` sizes over the (normalised) observation."""

    options = DQNOptions

    def __init__(
        self, obs_size: int, actions: int, hidden: list[int] | None = None, activation: str = "relu",
        normalize: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.normalizer = Normalizer(obs_size, normalize)
        self.q = mlp([obs_size, *(hidden or [64, 64])], activation, actions, 1.0)
        self.head = self.q[-1]  # type: ignore[assignment]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.values(inputs["obs"])

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(self.normalizer(obs))


def policy_kwargs(options: Any, setup: Any) -> dict[str, Any]:
    """The network's constructor arguments from the spec's options and the environment (sw2.data.envs.EnvSetup)."""
    common = {"obs_size": setup.obs_size, "actions": setup.action_size, "hidden": list(options.hidden),
              "activation": options.activation, "normalize": options.normalize}  # fmt: skip
    if options.name == "ppo":
        return {**common, "continuous": setup.action == "box", "log_std_init": options.log_std_init}
    return common
