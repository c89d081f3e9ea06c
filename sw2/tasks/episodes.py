"""A policy judged by playing: whole episodes from fixed seeds, every copy's first episode counted, beside a
random policy on the same seeds. An episode longer than its environment's time limit (or MAX_STEPS where the
environment has none) is cut there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sw2.data.envs import MAX_EPISODE_STEPS, EnvSetup, make_vector

WAVE = 64  # copies played at once
MAX_STEPS = 10_000  # an episode's steps where the environment sets no limit
VAL_SEED, TEST_SEED = 1_000_000, 2_000_000  # the judgements' episode seeds: val's pick checkpoints, test's report


def play(setup: EnvSetup, act: Callable[[np.ndarray], np.ndarray] | None, episodes: int, seed: int) -> dict[str, Any]:
    """Mean, std, min and max of the returns of `episodes` episodes seeded seed, seed + 1, ..., acting with
    `act` (observations -> actions), or at random where it is None."""
    returns, lengths = [], []
    limit = min(setup.max_episode_steps or MAX_STEPS, MAX_EPISODE_STEPS)
    for first in range(0, episodes, WAVE):
        n = min(WAVE, episodes - first)
        envs = make_vector(setup, n, "sync", autoreset=True)
        try:
            obs, _ = envs.reset(seed=[seed + first + i for i in range(n)])
            envs.action_space.seed(seed + first)
            total, length, done = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
            while not done.all() and length.max() < limit:
                action = envs.action_space.sample() if act is None else act(obs)
                obs, reward, term, trunc, _ = envs.step(action)
                live = ~done
                total[live] += np.asarray(reward, dtype=np.float64)[live]
                length[live] += 1
                done |= np.asarray(term, dtype=bool) | np.asarray(trunc, dtype=bool)
        finally:
            envs.close()
        returns += total.tolist()
        lengths += length.tolist()
    r = np.array(returns)
    return {"episodes": len(r), "mean_return": float(r.mean()), "std_return": float(r.std()),
            "min_return": float(r.min()), "max_return": float(r.max()),
            "mean_length": float(np.mean(lengths))}  # fmt: skip


def judged(setup: EnvSetup, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int,
           target: float | None) -> dict[str, Any]:  # fmt: skip
    """The policy's scores (`play`) beside a random policy's, and whether it reached `target`."""
    scores = play(setup, act, episodes, seed)
    scores["baseline"] = {"name": "random policy", **play(setup, None, episodes, seed)}
    scores["target_return"] = target
    scores["solved"] = target is not None and scores["mean_return"] >= target
    return scores
