"""DQN's batches: every copy takes `train_freq` epsilon-greedy steps (actions at random before
`learning_starts`), the transitions go into a replay buffer
(part of the checkpoint: an exact resume needs it), and the batch is `gradient_steps` minibatches drawn from
the buffer at random (none before `learning_starts` environment steps). Epsilon falls linearly from
`exploration_initial_eps` to `exploration_final_eps` over the first `exploration_fraction` of training."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from sw2.engine.context import Context
from sw2.engine.trainable import Batch
from sw2.tasks.acting import Acting

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")


def epsilon(o: Any, progress: float) -> float:
    share = min(1.0, progress / o.exploration_fraction)
    return o.exploration_initial_eps + share * (o.exploration_final_eps - o.exploration_initial_eps)


class Replay(Acting):
    def __init__(self, *args: Any, batch: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size, d = self.o.buffer_size, self.setup.obs_size
        self.buffer = {"obs": torch.zeros(size, d), "actions": torch.zeros(size, dtype=torch.long),
                       "rewards": torch.zeros(size), "next_obs": torch.zeros(size, d),
                       "terminated": torch.zeros(size)}  # fmt: skip
        self.pos, self.size, self.minibatch = 0, 0, batch

    def add(self, rows: dict[str, torch.Tensor]) -> None:
        n, cap = len(rows["obs"]), self.o.buffer_size
        at = (self.pos + torch.arange(n)) % cap
        for k in FIELDS:
            self.buffer[k][at] = rows[k].to(self.buffer[k].dtype)
        self.pos, self.size = int((self.pos + n) % cap), min(cap, self.size + n)

    def epoch(self, ctx: Context) -> Iterator[Batch]:
        self.ctx = ctx
        envs, obs = self.open(ctx.epoch)
        net, o, g, dev = self.net, self.o, self.generator, self.device
        try:
            for _ in range(self.steps_per_epoch):
                seen: list[torch.Tensor] = []
                rows: dict[str, list[torch.Tensor]] = {k: [] for k in FIELDS}
                for _ in range(o.train_freq):
                    x = self.obs_tensor(obs)
                    eps = epsilon(o, ctx.progress) if self.env_steps >= o.learning_starts else 1.0  # at random until
                    explore = torch.rand(self.n, generator=g) < eps  # learning starts (as SB3)
                    random = torch.randint(self.setup.n_actions, (self.n,), generator=g)
                    with torch.no_grad():
                        greedy = net.values(x).argmax(1).cpu()
                    action = torch.where(explore, random, greedy)
                    obs, reward, term, trunc, final = self.step(envs, action)
                    for k, v in (("obs", x.cpu()), ("actions", action), ("rewards", torch.as_tensor(reward)),
                                 ("next_obs", torch.as_tensor(np.asarray(final, dtype=np.float32)).reshape(self.n, -1)),
                                 ("terminated", torch.as_tensor(term))):  # fmt: skip
                        rows[k].append(v)
                    seen.append(x)
                self.add({k: torch.cat(v) for k, v in rows.items()})  # a round's transitions at once
                per_round = o.gradient_steps if o.gradient_steps > 0 else o.train_freq * self.n
                updates = per_round if self.env_steps >= o.learning_starts and self.size else 0
                pick = torch.randint(max(self.size, 1), (updates * self.minibatch,), generator=g)
                batch = {k: self.buffer[k][pick].to(dev) for k in FIELDS}
                batch["env_steps"] = torch.tensor(self.env_steps, device=dev)
                idx = torch.arange(self.env_steps - o.train_freq * self.n, self.env_steps, device=dev)
                yield batch, torch.empty(0, device=dev), idx
                net.normalizer.update(torch.cat(seen))
        finally:
            envs.close()

    def state_dict(self) -> dict[str, Any]:
        kept = {k: v[: self.size].clone() for k, v in self.buffer.items()}
        return {**super().state_dict(), "buffer": kept, "pos": self.pos, "size": self.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        size = int(state["size"])
        if size > self.o.buffer_size:
            raise ValueError("replay buffer")
        for k in FIELDS:
            self.buffer[k][:size] = state["buffer"][k]
        self.pos, self.size = int(state["pos"]), size
