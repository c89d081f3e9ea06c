"""What task control's batches are: experience gathered by a policy acting in vectorised environments.

`Acting` is the part both algorithms share: it opens `n_envs` copies at the start of every epoch and closes
them at its end, steps them with the policy's actions, resets a copy whose episode ended, scales rewards by
the running spread of the discounted return where `normalize` says (VecNormalize), and keeps each finished
episode's raw return and length. `Rollouts` (PPO) yields one rollout per batch, advantages and returns
computed (GAE); `Replay` (DQN, sw2/tasks/replay.py) fills a replay buffer and yields minibatches drawn from it.

Exact resume. Environments cannot be saved, so every epoch restarts its episodes: copy i's first episode of
epoch e is seeded by (train.seed, e, i), later ones continue that copy's random stream. An episode cut at an
epoch's end is a truncation (the learner bootstraps from its last state), in a run resumed from a checkpoint
and in an uninterrupted one alike; with the policy's sampling generator, the statistics and the optimizer's
state in the checkpoint, a resumed run's weights equal the uninterrupted run's (tests/test_control.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from sw2.data.envs import EnvSetup, make_vector
from sw2.engine.context import Context
from sw2.engine.trainable import Batch, Stream

CLIP_REWARD = 10.0  # scaled rewards are clipped to +-this (VecNormalize's clip_reward)


def epoch_seeds(seed: int, epoch: int, n: int) -> list[int]:
    """The seed of each copy's first episode in `epoch`."""
    return [int(s) for s in np.random.SeedSequence([seed, epoch]).generate_state(n)]


class Acting(Stream):
    def __init__(self, net: Any, setup: EnvSetup, options: Any, mode: str, seed: int, epoch_steps: int, unit: int):
        self.net, self.setup, self.o, self.mode, self.seed = net, setup, options, mode, seed
        self.examples, self.batch_size = epoch_steps, unit  # environment steps per epoch, per batch
        self.n = options.n_envs
        self.generator = torch.Generator().manual_seed(seed)  # the actions' draws
        self.device = torch.device("cpu")
        self.env_steps, self.episodes_done = 0, 0
        # the discounted return's running moments (reward scaling); a copy's return restarts with its episode
        self.ret_mean, self.ret_var, self.ret_count = 0.0, 1.0, 1e-4
        self.finished: list[tuple[float, int]] = []  # this epoch's episodes: (raw return, length)
        self.ctx: Context | None = None  # the run's, for `evaluate` (a solved policy stops training)

    def to(self, device: torch.device) -> None:
        self.device = device

    def shapes(self) -> dict[str, torch.Tensor]:
        return {"obs": torch.zeros(1, self.setup.obs_size)}

    # ---- environments ------------------------------------------------------------------------------
    def open(self, epoch: int) -> tuple[Any, np.ndarray]:
        envs = make_vector(self.setup, self.n, self.mode)
        obs, _ = envs.reset(seed=epoch_seeds(self.seed, epoch, self.n))
        self.ep_return, self.ep_length = np.zeros(self.n), np.zeros(self.n, dtype=np.int64)
        self.discounted = np.zeros(self.n)
        self.finished = []
        return envs, obs

    def env_actions(self, action: torch.Tensor) -> np.ndarray:
        a = action.cpu().numpy()
        if self.setup.action == "discrete":
            return a.astype(np.int64) + self.setup.action_start
        low, high = np.array(self.setup.low), np.array(self.setup.high)
        return np.clip(a.reshape(self.n, *self.setup.action_shape), low.reshape(self.setup.action_shape),
                       high.reshape(self.setup.action_shape)).astype(np.float32)  # fmt: skip

    def step(
        self, envs: Any, action: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One step of every copy: (next observations, scaled rewards, terminated, truncated, final observations).
        A copy whose episode ended is reset: its next observation starts the new episode, its final one ended
        the old."""
        obs, reward, term, trunc, _ = envs.step(self.env_actions(action))
        reward = np.asarray(reward, dtype=np.float64)
        term, trunc = np.asarray(term, dtype=bool), np.asarray(trunc, dtype=bool) & ~np.asarray(term, dtype=bool)
        self.env_steps += self.n
        self.ep_return += reward
        self.ep_length += 1
        scaled = self.scale(reward)
        final = obs
        done = term | trunc
        if done.any():
            final = obs.copy()
            for i in np.flatnonzero(done):
                self.finished.append((float(self.ep_return[i]), int(self.ep_length[i])))
            self.episodes_done += int(done.sum())
            self.ep_return[done], self.ep_length[done], self.discounted[done] = 0.0, 0, 0.0
            obs, _ = envs.reset(options={"reset_mask": done})
        return obs, scaled, term, trunc, final

    def scale(self, reward: np.ndarray) -> np.ndarray:
        if not self.o.normalize:
            return reward
        self.discounted = self.discounted * self.o.gamma + reward
        b_mean, b_var, b_n = self.discounted.mean(), self.discounted.var(), len(reward)
        delta, total = b_mean - self.ret_mean, self.ret_count + b_n
        m2 = self.ret_var * self.ret_count + b_var * b_n + delta**2 * self.ret_count * b_n / total
        self.ret_mean, self.ret_var, self.ret_count = self.ret_mean + delta * b_n / total, m2 / total, total
        return np.clip(reward / np.sqrt(self.ret_var + 1e-8), -CLIP_REWARD, CLIP_REWARD)

    def obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(self.n, -1).to(self.device)

    def train_returns(self) -> dict[str, float]:
        """The epoch's finished training episodes (raw returns), for the history."""
        out = {"env_steps": float(self.env_steps), "episodes": float(self.episodes_done)}
        if self.finished:
            out["train_return"] = float(np.mean([r for r, _ in self.finished]))
            out["train_length"] = float(np.mean([n for _, n in self.finished]))
        return out

    # ---- exact resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "env_steps": self.env_steps,
                "episodes_done": self.episodes_done,
                "ret": [float(self.ret_mean), float(self.ret_var), float(self.ret_count)]}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.env_steps, self.episodes_done = int(state["env_steps"]), int(state["episodes_done"])
        self.ret_mean, self.ret_var, self.ret_count = (float(v) for v in state["ret"])


class Rollouts(Acting):
    """PPO's batches: `n_steps` steps of every copy with actions drawn from the policy, then GAE (Schulman et
    al., 2016) over them. Observations stay raw; the network's normaliser learns their moments after the
    update that used them, so a rollout's log-probabilities and the update's see the same scaling."""

    def epoch(self, ctx: Context) -> Iterator[Batch]:
        self.ctx = ctx
        envs, obs = self.open(ctx.epoch)
        net, o, g = self.net, self.o, self.generator
        t_len, n = o.n_steps, self.n
        try:
            for _ in range(self.steps_per_epoch):
                rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("obs", "actions", "logp", "values", "rewards",
                                                                         "ends")}  # fmt: skip
                with torch.no_grad():
                    for _ in range(t_len):
                        x = self.obs_tensor(obs)
                        action, logp = net.sample(x, g)
                        value = net.value(x)
                        obs, reward, term, trunc, final = self.step(envs, action)
                        reward = torch.as_tensor(reward, dtype=torch.float32, device=self.device)
                        if trunc.any():  # a time limit: the value of where it stopped stands in for what follows
                            cut = torch.as_tensor(np.flatnonzero(trunc), device=self.device)
                            reward[cut] += o.gamma * net.value(self.obs_tensor(final)[cut])
                        for k, v in (("obs", x), ("actions", action), ("logp", logp), ("values", value),
                                     ("rewards", reward)):  # fmt: skip
                            rows[k].append(v)
                        rows["ends"].append(torch.as_tensor(term | trunc, dtype=torch.float32, device=self.device))
                    last = net.value(self.obs_tensor(obs))
                batch = self._advantages({k: torch.stack(v) for k, v in rows.items()}, last)
                idx = torch.arange(self.env_steps - t_len * n, self.env_steps, device=self.device)
                yield batch, torch.empty(0, device=self.device), idx
                net.normalizer.update(batch["obs"])
        finally:
            envs.close()

    def _advantages(self, r: dict[str, torch.Tensor], last: torch.Tensor) -> dict[str, torch.Tensor]:
        """GAE(gamma, lambda) advantages and the returns the value learns, flattened over steps and copies."""
        gamma, lam = self.o.gamma, self.o.gae_lambda
        values, rewards, ends = r["values"], r["rewards"], r["ends"]
        adv = torch.zeros_like(rewards)
        running = torch.zeros_like(last)
        for t in reversed(range(len(rewards))):
            after = last if t == len(rewards) - 1 else values[t + 1]
            going = 1.0 - ends[t]
            delta = rewards[t] + gamma * after * going - values[t]
            running = delta + gamma * lam * going * running
            adv[t] = running
        flat = {k: v.flatten(0, 1) for k, v in r.items() if k not in ("rewards", "ends")}
        return {**flat, "advantages": adv.flatten(), "returns": (adv + values).flatten()}
