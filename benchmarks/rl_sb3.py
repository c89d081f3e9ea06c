"""Stable-Baselines3's PPO or DQN with the RL Zoo's hyper-parameters (hyperparams/ppo.yml, dqn.yml), judged by
benchmarks/rl_judge.py every EVERY environment steps and stopped once solved. Runs in its own environment
(stable-baselines3 is never an sw2 dependency): python benchmarks/rl_sb3.py ALGO ENV SEED OUT.json"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from rl_judge import Clock  # noqa: E402
from stable_baselines3 import DQN, PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.utils import get_linear_fn  # noqa: E402

ZOO = {
    ("ppo", "CartPole-v1"): dict(n_envs=8, n_timesteps=100_000, kwargs=dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=get_linear_fn(0.001, 0.0, 1.0), clip_range=get_linear_fn(0.2, 0.0, 1.0))),
    ("dqn", "CartPole-v1"): dict(n_envs=1, n_timesteps=50_000, kwargs=dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
        target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
        exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))),
}  # fmt: skip


class Judge(BaseCallback):
    def __init__(self, clock: Clock, algo: str) -> None:
        super().__init__()
        self.clock, self.algo = clock, algo

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(obs, deterministic=True)[0]

    def _on_step(self) -> bool:
        if self.clock.due(self.num_timesteps):
            return not self.clock.judge(self.num_timesteps, self.act)
        return True


def main() -> None:
    algo, env_id, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    z = ZOO[(algo, env_id)]
    torch.manual_seed(seed)
    clock = Clock(f"sb3-{algo}", env_id, 475.0, out)
    envs = make_vec_env(env_id, n_envs=z["n_envs"], seed=seed)
    model = (PPO if algo == "ppo" else DQN)("MlpPolicy", envs, seed=seed, device="cpu", **z["kwargs"])
    model.learn(total_timesteps=z["n_timesteps"], callback=Judge(clock, algo))
    clock.write()


if __name__ == "__main__":
    main()
