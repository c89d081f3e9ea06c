"""Gymnasium environments as the data of task control: the environment a spec names (checked against
Gymnasium's registry, with "did you mean"), its spaces as a bundle records them (`EnvSetup`, preprocess.json),
and the vector environments a policy acts in.

Only ids in Gymnasium's registry are made, never `module:Env` ids (which import a module): a bundle's
preprocess.json cannot make sw2 import code. An environment of your own is registered by a plug-in module
($SW2_PLUGINS) that calls `gymnasium.register`. Observations are Box spaces of any shape (flattened for the
network); actions are Discrete or Box. Episodes end on `terminated` (no bootstrapping) or `truncated` (a
time limit: the learner bootstraps from the final observation).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.registry import did_you_mean

MAX_OBS = 100_000  # numbers in one observation
MAX_ACTIONS = 100_000  # discrete actions, or numbers in one continuous action
MAX_EPISODE_STEPS = 100_000  # the longest episode sw2 plays (judgements, sw2 play); without a time limit, 10,000
PROBE_SECONDS = 0.3  # each vector kind measured this long by `vector: auto`
ASYNC_WORTH = 2e-4  # seconds per environment step below which async cannot win (its inter-process round trip)


def gymnasium() -> Any:
    try:
        import gymnasium as gym
    except ImportError:
        raise UserError("task control needs Gymnasium: pip install 'sw2[rl]'") from None
    return gym


# registered ids that make another library's environment by a name they are given (which may import a module)
WRAPPERS = ("GymV21Environment-v0", "GymV26Environment-v0")
REFUSED_KWARGS = ("render_mode", "env_id", "entry_point", "env_name")


def registered(env_id: str, field_: str = "data.env") -> str:
    """`env_id` if Gymnasium's registry has it, else a one-line error with the nearest ids."""
    gym = gymnasium()
    ids = [i for i in gym.envs.registry if i not in WRAPPERS]
    if ":" in env_id or env_id not in ids:
        hint = did_you_mean(env_id, ids)
        raise UserError(
            f"{field_}: '{env_id}' is not a registered Gymnasium environment sw2 makes; {hint} (your own: register "
            "it in a plug-in module named in $SW2_PLUGINS)"
        )
    return env_id


def made(env_id: str, field_: str, build: Any) -> Any:
    """`build()` (gymnasium.make or make_vec), its failures one line naming `field_`."""
    gym = gymnasium()
    try:
        return build()
    except gym.error.DependencyNotInstalled as err:
        raise UserError(f"{env_id} needs a package that is not installed: {str(err).splitlines()[0]}") from None
    except (TypeError, ValueError, AssertionError, KeyError, gym.error.Error) as err:
        first = (str(err).splitlines() or [""])[0][:200]
        raise UserError(f"{field_}: {env_id} cannot be made with them ({type(err).__name__}: {first})") from None


@dataclass
class EnvSetup:
    """What a policy bundle knows of its environment (preprocess.json): enough to rebuild it (`env`, `kwargs`),
    to check an observation sent to it, to read its actions, and to say when it is solved."""

    env: str
    kwargs: dict[str, Any]
    observation_shape: list[int]
    action: str  # "discrete" or "box"
    n_actions: int = 0  # discrete: how many
    action_start: int = 0  # discrete: the first action's number (Discrete(n, start))
    action_shape: list[int] = field(default_factory=list)  # box
    low: list[float] = field(default_factory=list)  # box: bounds, flattened (+-inf where unbounded)
    high: list[float] = field(default_factory=list)
    reward_threshold: float | None = None
    max_episode_steps: int | None = None

    @property
    def obs_size(self) -> int:
        return math.prod(self.observation_shape)

    @property
    def action_size(self) -> int:
        """The policy's outputs: a logit per discrete action, a mean per continuous dimension."""
        return self.n_actions if self.action == "discrete" else math.prod(self.action_shape)

    def to_json(self) -> dict[str, Any]:
        state = asdict(self)
        state["low"] = [_finite_or_text(v) for v in self.low]
        state["high"] = [_finite_or_text(v) for v in self.high]
        return state

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> EnvSetup:
        """preprocess.json, bounded and checked: a crafted one can name no module nor size a huge network."""
        try:
            setup = cls(**{**state, "low": [float(v) for v in state.get("low", [])],
                           "high": [float(v) for v in state.get("high", [])]})  # fmt: skip
            ok = (
                isinstance(setup.env, str)
                and isinstance(setup.kwargs, dict)
                and all(isinstance(v, bool | int | float | str | None | list) for v in setup.kwargs.values())
                and all(isinstance(d, int) and 1 <= d for d in setup.observation_shape + setup.action_shape)
                and 1 <= setup.obs_size <= MAX_OBS
                and setup.action in ("discrete", "box")
                and 1 <= setup.action_size <= MAX_ACTIONS
                and not any(k in setup.kwargs for k in REFUSED_KWARGS)
                and isinstance(setup.action_start, int)
                and (setup.max_episode_steps is None or 1 <= setup.max_episode_steps <= MAX_EPISODE_STEPS)
                and (setup.action == "discrete" or len(setup.low) == len(setup.high) == setup.action_size)
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise UserError("preprocess.json: not an environment sw2 writes; the bundle is damaged: train it again")
        registered(setup.env, "preprocess.json: env")
        return setup

    # ---- what a server takes and says ------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        actions = {"kind": "discrete", "n": self.n_actions} if self.action == "discrete" else {
            "kind": "box", "shape": self.action_shape}  # fmt: skip
        return {"kind": "observations", "env": self.env, "shape": self.observation_shape, "actions": actions,
                "send": '{"observations": [[...], ...]}'}  # fmt: skip

    def observations(self, items: Any) -> np.ndarray:
        """Observations sent to the policy (a list of nested lists or an array), as float32 (n, *shape); a
        ValueError naming the first that does not fit."""
        try:
            out = np.asarray(items)
        except (ValueError, TypeError):
            out = np.zeros(0, dtype=object)
        if out.dtype.kind not in "iuf":
            raise ValueError(f"observations: each must be numbers shaped {self.observation_shape}")
        out = out.astype(np.float64)
        shape = tuple(self.observation_shape)
        if out.shape == shape:  # one observation
            out = out[None]
        elif out.ndim == 2 and out.shape[1] == self.obs_size and out.shape[1:] != shape:  # flattened rows
            out = out.reshape(len(out), *shape)
        if list(out.shape[1:]) != self.observation_shape or not len(out):
            raise ValueError(
                f"observations: shaped {list(out.shape[1:])}; the policy of {self.env} takes {self.observation_shape}"
            )
        if not np.isfinite(out).all() or (np.abs(out) > np.finfo(np.float32).max).any():
            raise ValueError("observations: hold a number that is not a finite float32")
        return out.astype(np.float32)

    def examples(self, observations: np.ndarray) -> Examples:
        """Observations (n, *shape) as examples: a frame of their flattened numbers, obs_0, obs_1, ..."""
        flat = observations.reshape(len(observations), self.obs_size)
        frame = pd.DataFrame(flat, columns=[f"obs_{i}" for i in range(flat.shape[1])])
        return Examples(target=np.zeros(len(flat)), frame=frame)

    def inputs(self, examples: Examples) -> dict[str, Any]:
        import torch

        assert examples.frame is not None
        return {"obs": torch.as_tensor(examples.frame.to_numpy(dtype=np.float32, copy=True)).reshape(len(examples), -1)}


def _finite_or_text(v: float) -> float | str:
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def setup_of(env_id: str, kwargs: dict[str, Any]) -> EnvSetup:
    """Make the environment once and read its spaces; a one-line error for an id, kwargs or space sw2 cannot take."""
    gym = gymnasium()
    registered(env_id)
    refused = [k for k in kwargs if k in REFUSED_KWARGS]
    if refused:
        raise UserError(f"data.env_kwargs: {refused[0]} is not an environment's option sw2 passes on; remove it")
    env = made(env_id, "data.env_kwargs", lambda: gym.make(env_id, **kwargs))
    try:
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, gym.spaces.Box) or not 1 <= math.prod(obs.shape) <= MAX_OBS:
            raise UserError(
                f"data.env: {env_id}'s observations are {type(obs).__name__}; task control takes Box observations "
                "(arrays of numbers); wrap it (e.g. FlattenObservation) in a plug-in"
            )
        spec = env.spec
        limit = spec.max_episode_steps if spec else None
        if limit is not None and not 1 <= limit <= MAX_EPISODE_STEPS:
            raise UserError(f"data.env: {env_id}'s episodes last up to {limit:,} steps; sw2 plays at most "
                            f"{MAX_EPISODE_STEPS:,} (give env_kwargs: {{max_episode_steps: N}})")  # fmt: skip
        common = {"env": env_id, "kwargs": dict(kwargs), "observation_shape": [int(d) for d in obs.shape],
                  "reward_threshold": spec.reward_threshold if spec else None,
                  "max_episode_steps": spec.max_episode_steps if spec else None}  # fmt: skip
        if isinstance(act, gym.spaces.Discrete) and 1 <= int(act.n) <= MAX_ACTIONS:
            return EnvSetup(**common, action="discrete", n_actions=int(act.n), action_start=int(act.start))
        if isinstance(act, gym.spaces.Box) and 1 <= math.prod(act.shape) <= MAX_ACTIONS:
            return EnvSetup(
                **common,
                action="box",
                action_shape=[int(d) for d in act.shape],
                low=act.low.astype(float).ravel().tolist(),
                high=act.high.astype(float).ravel().tolist(),
            )
        raise UserError(f"data.env: {env_id}'s actions are {type(act).__name__}; task control takes Discrete or Box")
    finally:
        env.close()


def make(setup: EnvSetup, render_mode: str | None = None) -> Any:
    """One copy of the environment (sw2 play renders it as rgb_array frames)."""
    gym = gymnasium()
    extra = {"render_mode": render_mode} if render_mode else {}
    return made(setup.env, "the environment", lambda: gym.make(registered(setup.env), **extra, **setup.kwargs))


def make_vector(setup: EnvSetup, n: int, mode: str, autoreset: bool = False) -> Any:
    """`n` copies stepped together (`mode`: sync or async). Without `autoreset` a copy whose episode ended
    waits for the caller to reset it (`reset(options={"reset_mask": ...})`): the learner seeds every episode."""
    gym = gymnasium()
    from gymnasium.vector import AutoresetMode

    reset = AutoresetMode.NEXT_STEP if autoreset else AutoresetMode.DISABLED
    return made(setup.env, "the environment", lambda: gym.make_vec(
        registered(setup.env), num_envs=n, vectorization_mode=mode, vector_kwargs={"autoreset_mode": reset},
        **setup.kwargs,
    ))  # fmt: skip


@dataclass
class VectorChoice:
    mode: str
    how: str
    steps_per_second: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def choose_vector(setup: EnvSetup, n: int, asked: str) -> VectorChoice:
    """sync or async, as asked, or (auto) the one that steps `n` copies faster here, with random actions: async
    is measured only where one step of the environment costs more than the inter-process round trip could save."""
    if asked != "auto":
        return VectorChoice(asked, "spec: model.vector")
    if n == 1 or (os.cpu_count() or 1) == 1:
        return VectorChoice("sync", "auto: one copy or one CPU")
    rates = {"sync": _rate(setup, n, "sync")}
    if 1 / rates["sync"] < ASYNC_WORTH:
        return VectorChoice("sync", f"auto: {rates['sync']:,.0f} steps/s in this process; too cheap a step for "
                                    "async to win", rates)  # fmt: skip
    rates["async"] = _rate(setup, n, "async")
    best = max(rates, key=lambda k: rates[k])
    return VectorChoice(best, f"auto: measured {', '.join(f'{k} {v:,.0f}' for k, v in rates.items())} steps/s", rates)


def _rate(setup: EnvSetup, n: int, mode: str) -> float:
    """Environment steps per second of `n` copies in `mode`, acting at random for PROBE_SECONDS."""
    envs = make_vector(setup, n, mode, autoreset=True)
    try:
        envs.reset(seed=list(range(n)))
        envs.action_space.seed(0)
        envs.step(envs.action_space.sample())  # a first step (async: the workers start)
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < PROBE_SECONDS:
            envs.step(envs.action_space.sample())
            steps += n
        return steps / (time.perf_counter() - t0)
    finally:
        envs.close()
