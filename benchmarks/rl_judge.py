"""The judgement every learner of benchmarks/rl.py is held to, importable by each one's own environment (numpy,
Gymnasium): `episodes` deterministic episodes seeded 1,000,000, 1,000,001, ... in a vector env (each copy's
first episode counted), as sw2's own (sw2/tasks/episodes.py) plays them; and the clock of a run that excludes
the judgements' own time, so that a learner is timed on its training alone."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

SEED = 1_000_000
EVERY = 5120  # environment steps between judgements (sw2's epoch for the Zoo's CartPole recipe: 20 rollouts)


def mean_return(env_id: str, act: Callable[[np.ndarray], np.ndarray], episodes: int = 20) -> float:
    envs = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync")
    obs, _ = envs.reset(seed=[SEED + i for i in range(episodes)])
    total, done = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    while not done.all():
        obs, reward, term, trunc, _ = envs.step(act(obs))
        total[~done] += np.asarray(reward)[~done]
        done |= np.asarray(term) | np.asarray(trunc)
    envs.close()
    return float(total.mean())


class Clock:
    """Training time (judgements excluded), the judgements so far, and the first that reached `target`."""

    def __init__(self, learner: str, env_id: str, target: float, out: str) -> None:
        self.learner, self.env_id, self.target, self.out = learner, env_id, target, out
        self.start, self.judging, self.next = time.perf_counter(), 0.0, EVERY
        self.curve: list[dict[str, float]] = []
        self.solved: dict[str, float] | None = None

    def due(self, steps: int) -> bool:
        return steps >= self.next

    def judge(self, steps: int, act: Callable[[np.ndarray], np.ndarray]) -> bool:
        """Judge the policy at `steps` environment steps; True once solved (the run should stop)."""
        t0 = time.perf_counter()
        trained = t0 - self.start - self.judging
        score = mean_return(self.env_id, act)
        self.judging += time.perf_counter() - t0
        self.next = (steps // EVERY + 1) * EVERY
        self.curve.append({"env_steps": steps, "seconds": trained, "mean_return": score})
        if self.solved is None and score >= self.target:
            self.solved = self.curve[-1]
        return self.solved is not None

    def write(self) -> None:
        record = {"learner": self.learner, "env": self.env_id, "target": self.target, "solved": self.solved,
                  "curve": self.curve, "seconds": time.perf_counter() - self.start - self.judging}  # fmt: skip
        Path(self.out).write_text(json.dumps(record, indent=1))
