"""control: a policy that learns by acting in a Gymnasium environment (`data: {env: CartPole-v1}`), trained
by PPO (`model: ppo`, the default) or DQN (`model: dqn`), on the trainable design like every task.

The trainable's batches are experience (sw2/tasks/acting.py: PPO's rollouts, DQN's replay minibatches), its
step is the algorithm's update (sw2/tasks/policy_steps.py), and an epoch is `timesteps / evaluations`
environment steps, after which `evaluate` plays `eval_episodes` deterministic episodes from fixed seeds: their
mean return is `val_metric` (`val_loss` its negative), what early stopping, `best_epoch` and the tuner read.
With `until_solved` a judgement at the target (the environment's reward_threshold) ends training.
metrics.json's "val" and "test" are such judgements on two sets of seeds, beside a random policy's.

A bundle acts: `bundle.predict(observations)` (or a JSON/CSV file of them), `sw2 predict`, `sw2 serve`'s
`POST /v1/predict {"observations": [...]}`, the ONNX graph (the observation normaliser inside), and
`sw2 play BUNDLE --episodes 5 --gif out.gif` (sw2/tasks/control_play.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from sw2 import log
from sw2.control_defaults import epoch_steps, fill, rollout
from sw2.data.envs import MAX_EPISODE_STEPS, EnvSetup, VectorChoice, choose_vector, gymnasium, setup_of
from sw2.data.examples import Examples
from sw2.engine.trainable import Trainable
from sw2.errors import UserError
from sw2.models.policy import ActorCritic, QNetwork, policy_kwargs
from sw2.preflight import Check, Verdict
from sw2.task_rules import CONTROL, check_control
from sw2.tasks import TASKS
from sw2.tasks import control_report as r
from sw2.tasks.acting import Rollouts
from sw2.tasks.base import HeldOut, Prepared, Scored, Task, TinyExample
from sw2.tasks.episodes import TEST_SEED, VAL_SEED, judged, play
from sw2.tasks.policy_steps import DQNStep, PPOStep
from sw2.tasks.replay import Replay

if TYPE_CHECKING:
    from sw2.engine.result import FitResult
    from sw2.spec import Spec

HELD_OBSERVATIONS = 256  # observations a bundle's export is checked on (from val-seeded episodes)
MAX_PREDICT_BYTES = 256 * 2**20  # a file of observations sw2 predict reads


@dataclass
class Environment(Prepared):
    """The prepared "data": the environment (`encoder`) and the vector env chosen to act in."""

    vector: VectorChoice
    gif: bytes | None = None  # the report's episode, once scored


def actions_from(setup: EnvSetup, out: torch.Tensor) -> np.ndarray:
    """The deterministic policy's actions from the network's outputs: argmax, or the means within the bounds."""
    if setup.action == "discrete":
        return out.argmax(-1).cpu().numpy() + setup.action_start
    low, high = np.array(setup.low, np.float32), np.array(setup.high, np.float32)
    a = np.clip(out.detach().cpu().numpy().astype(np.float32), low, high)
    return a.reshape(len(a), *setup.action_shape)


def actor(net: nn.Module, setup: EnvSetup, device: torch.device | None = None) -> Callable[[np.ndarray], np.ndarray]:
    device = device or next(net.parameters()).device

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(len(obs), -1).to(device)
        with torch.no_grad():
            return actions_from(setup, net({"obs": x}))

    return act


class Control(Task):
    metrics = CONTROL.metrics
    blend = None
    exports: ClassVar[bool] = True
    compresses: ClassVar[bool] = False

    def check_spec(self, spec: Spec) -> None:
        super().check_spec(spec)
        check_control(spec)

    def fill(self, spec: Spec) -> Spec:
        return fill(spec)

    def tiny_example(self, folder: Path) -> TinyExample:
        """CartPole, PPO on 2 copies for 2 epochs of 256 steps; five observations to predict."""
        (folder / "observations.json").write_text(json.dumps([[0.0, 0.1 * i, -0.02 * i, 0.0] for i in range(5)]))
        model = {"name": "ppo", "n_envs": 2, "n_steps": 64, "timesteps": 512, "evaluations": 2, "eval_episodes": 3,
                 "vector": "sync", "hidden": [16, 16], "n_epochs": 2}  # fmt: skip
        train = {"batch_size": 32, "deterministic": True, "threads": 1, "precision": "fp32", "device": "cpu"}
        spec = {"name": "tiny-control", "task": self.name, "data": {"env": "CartPole-v1"}, "model": model,
                "train": train}  # fmt: skip
        return TinyExample(spec, ("/v1/predict", {"observations": [[0.0, 0.0, 0.0, 0.0]]}), "observations.json")

    # ---- data ------------------------------------------------------------------------------------
    def prepare(self, spec: Spec, root: Path) -> Environment:
        env = str(spec.data.env)
        setup = setup_of(env, spec.data.env_kwargs)
        if spec.model.name == "dqn" and setup.action != "discrete":
            raise UserError(f"model: dqn picks among discrete actions; {env}'s are continuous (Box): use model: ppo")
        if spec.model.name == "dqn":
            check_buffer(spec.model.buffer_size, setup)
        vector = choose_vector(setup, spec.model.n_envs, spec.model.vector)
        gym = gymnasium()
        digest = hashlib.sha256(json.dumps([setup.to_json(), gym.__version__]).encode()).hexdigest()
        actions = f"{setup.n_actions} discrete" if setup.action == "discrete" else f"continuous {setup.action_shape}"
        report = {"source": f"Gymnasium {env}", "gymnasium": gym.__version__, "observations": setup.observation_shape,
                  "actions": actions, "reward_threshold": setup.reward_threshold,
                  "max_episode_steps": setup.max_episode_steps, "vector": vector.to_json()}  # fmt: skip
        none = setup.examples(np.zeros((0, *setup.observation_shape), np.float32))  # until the policy meets some
        return Environment(setup, none, none, report, digest, vector=vector)

    def load_encoder(self, state: dict[str, Any]) -> EnvSetup:
        return EnvSetup.from_json(state)

    def describe(self, data: Any) -> str:
        s, v = data.encoder, data.vector
        return f"observations {s.observation_shape}, {data.report['actions']} actions; {v.mode} vector env ({v.how})"

    def candidates(self, spec: Spec, data: Any) -> list[Any]:
        return [spec.model]

    def search_space(self, spec: Spec, data: Any) -> dict[str, Any] | None:
        from sw2.spec import distribution

        space = {"train.lr": {"log": [1e-4, 3e-3]}, "model.gamma": {"choice": [0.98, 0.99, 0.995]}}
        if spec.model.name == "ppo":
            space |= {"model.gae_lambda": {"choice": [0.8, 0.9, 0.95]}, "model.n_epochs": {"choice": [4, 10, 20]}}
        return {k: distribution(k, v) for k, v in space.items()}

    # ---- training --------------------------------------------------------------------------------
    def trainable(self, spec: Spec, data: Any, **options: Any) -> Trainable:
        if options:
            raise UserError(f"task {self.name} learns from its own actions: {', '.join(sorted(options))} do not apply")
        o, setup = spec.model, data.encoder
        kwargs = policy_kwargs(o, setup)
        with torch.random.fork_rng(devices=[]):  # the same initial weights in every process
            torch.manual_seed(spec.train.seed)
            net = (ActorCritic if o.name == "ppo" else QNetwork)(**kwargs)
        args = (net, setup, o, data.vector.mode, spec.train.seed, epoch_steps(o), rollout(o))
        stream = Rollouts(*args) if o.name == "ppo" else Replay(*args, batch=spec.train.batch_size)
        step = PPOStep(net, spec) if o.name == "ppo" else DQNStep(net, spec)
        target = o.target_return if o.target_return is not None else setup.reward_threshold

        def evaluate(device: torch.device | None = None) -> dict[str, float]:
            t0 = time.perf_counter()
            scores = play(setup, actor(net, setup, device), o.eval_episodes, VAL_SEED)
            row = {"val_metric": scores["mean_return"], "val_loss": -scores["mean_return"],
                   "eval_seconds": round(time.perf_counter() - t0, 4),
                   "val_std_return": scores["std_return"], "val_mean_length": scores["mean_length"],
                   **stream.train_returns(), **step.stats}  # fmt: skip
            if o.until_solved and target is not None and scores["mean_return"] >= target and stream.ctx is not None:
                stream.ctx.stop = "solved"
            return row

        return Trainable(
            modules={"policy": net}, step=step, batches=stream, evaluate=evaluate, metric="mean_return",
            built={"policy": (o.name, kwargs)},
        )  # fmt: skip

    def preflight(self, spec: Spec, data: Any) -> list[Any]:
        def environment() -> list[Verdict]:
            s, o = data.encoder, spec.model
            target = o.target_return if o.target_return is not None else s.reward_threshold
            out = [Verdict("environment", "PASS", f"{s.env}: {self.describe(data)}")]
            if o.until_solved and target is None:
                why = (f"{s.env} sets no reward_threshold: training runs all {o.timesteps:,} steps; give "
                       "model.target_return to stop once it is reached")  # fmt: skip
                out.append(Verdict("target", "WARN", why))
            return out

        return [Check("environment", frozenset(), environment)]

    # ---- scores ----------------------------------------------------------------------------------
    def _target(self, spec: Spec, setup: EnvSetup) -> float | None:
        return spec.model.target_return if spec.model.target_return is not None else setup.reward_threshold

    def score_run(self, model: nn.Module, data: Any, spec: Spec, result: FitResult) -> Scored:
        setup, n = data.encoder, max(20, spec.model.eval_episodes)
        act, target = actor(model, setup, torch.device("cpu")), self._target(spec, setup)
        metrics = {"val": judged(setup, act, n, VAL_SEED, target), "test": judged(setup, act, n, TEST_SEED, target)}
        solved = [row for row in result.history if target is not None and row.get("val_metric", -np.inf) >= target]
        at = {k: solved[0].get(k) for k in ("epoch", "env_steps", "time")} if solved else None
        training = {"env_steps": int(result.history[-1].get("env_steps", 0)) if result.history else 0,
                    "vector": data.vector.to_json(), "target_return": target, "solved_at": at}  # fmt: skip
        data.val, data.test = (setup.examples(met(setup, act, seed)) for seed in (VAL_SEED, TEST_SEED))
        data.gif = _report_gif(setup, act)
        return Scored(metrics=metrics, training=training)

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        ok = scores["mean_return"] > base["mean_return"]
        return ok, (f"mean return {scores['mean_return']:.1f} ± {scores['std_return']:.1f} vs a random policy's "
                    f"{base['mean_return']:.1f} over {scores['episodes']} episodes")  # fmt: skip

    def sample_size(self, metrics: dict[str, Any]) -> str:
        return f"{metrics.get('episodes', '?')} episodes"

    def write_files(self, folder: Path, data: Any, metrics: dict[str, Any]) -> None:
        """episode.gif, the start of one deterministic test episode (the report shows it), and the returns
        against environment steps for TensorBoard (tensorboard/by_env_steps: its step axis is environment steps,
        its wall-time axis the run's clock; the run's own scalars are per update)."""
        if getattr(data, "gif", None):
            (folder / "episode.gif").write_bytes(data.gif)
        file = folder / "history.jsonl"
        history = [json.loads(line) for line in file.read_text().splitlines()] if file.is_file() else []
        if history and "env_steps" in history[-1]:
            from torch.utils.tensorboard import SummaryWriter

            start = time.time() - float(history[-1]["time"])
            with SummaryWriter(str(folder / "tensorboard" / "by_env_steps")) as writer:
                for row in history:
                    for key in ("val_metric", "train_return"):
                        if key in row:
                            name = "mean_return" if key == "val_metric" else key
                            writer.add_scalar(name, row[key], int(row["env_steps"]), walltime=start + row["time"])

    def report_sections(self) -> list[tuple[str, str, Any]]:
        return [("returns", "Returns", r.returns), ("curves", "Return curves", r.curves)]

    def report_scores(self, run: Any) -> dict[str, Any]:
        return run.m.get("test", {})

    def held_out(self, bundle: Any, spec: Spec, root: Path) -> HeldOut:
        """Observations the bundle's policy meets in held-out episodes (export checks its graph on them)."""
        setup: EnvSetup = bundle.encoder
        act = actor(bundle.model, setup, torch.device("cpu"))
        val, test = (setup.examples(met(setup, act, seed)) for seed in (VAL_SEED, TEST_SEED))
        return HeldOut(test, val, test, bundle.fingerprint.get("data_sha256", ""))

    def inputs_of(self, subject: Any, examples: Any) -> dict[str, torch.Tensor]:
        return subject.encoder.inputs(examples)

    def evaluate_file(self, bundle: Any, path: Path) -> dict[str, Any]:
        raise UserError(f"{path}: a policy is judged by playing its environment, not on a file; sw2 play {bundle.path}")

    # ---- using a bundle --------------------------------------------------------------------------
    def read_examples(self, bundle: Any, data: Any) -> Examples:
        """Observations: an array or nested list, or a file of them: .json (a list), .csv (a row each, numbers
        only, no header) or .npy (no pickles)."""
        setup: EnvSetup = bundle.encoder
        if isinstance(data, Examples):
            return data
        if isinstance(data, str | Path):
            data = _read_observations(Path(data))
        try:
            return setup.examples(setup.observations(np.asarray(data) if isinstance(data, torch.Tensor) else data))
        except ValueError as err:
            raise UserError(str(err)) from None

    def predict(self, bundle: Any, data: Any) -> np.ndarray:
        """The deterministic policy's action for each observation."""
        examples = bundle.examples(data)
        return actions_from(bundle.encoder, bundle.run(bundle.encoder.inputs(examples)))

    def prediction_rows(self, bundle: Any, data: Any, top: int) -> list[dict[str, Any]]:
        actions = self.predict(bundle, data)
        ids = bundle.examples(data).ids
        return [{"id": i, "action": _jsonable(a)} for i, a in zip(ids, actions)]

    def answers(self, encoder: Any, outputs: torch.Tensor, top: int) -> list[dict[str, Any]]:
        return [{"action": _jsonable(a)} for a in actions_from(encoder, outputs)]

    def play(self, bundle: Any, episodes: int = 5, seed: int = 0, frames: int = 0) -> tuple[list[dict], list[Any]]:
        """The bundle's policy over `episodes` deterministic episodes, one after the other (seeds seed, seed + 1,
        ...): each one's return and length, and up to `frames` rendered frames (sw2/tasks/control_play.py)."""
        from sw2.tasks.control_play import episodes as run_episodes

        return run_episodes(bundle.encoder, actor(bundle.model, bundle.encoder, torch.device("cpu")), episodes, seed,
                            frames)  # fmt: skip


def check_buffer(size: int, setup: EnvSetup) -> None:
    """Refuse a replay buffer (two observations per transition, float32) larger than half this machine's memory."""
    need = size * (2 * setup.obs_size * 4 + 16)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no check
        return
    if need > memory // 2:
        raise UserError(
            f"model.buffer_size: {size:,} transitions of {setup.obs_size:,}-number observations take "
            f"{need / 2**30:.1f} GiB, over half this machine's {memory / 2**30:.0f} GiB; give fewer"
        )


def met(setup: EnvSetup, act: Callable[[np.ndarray], np.ndarray], seed: int) -> np.ndarray:
    """The first HELD_OBSERVATIONS observations the policy meets in episodes seeded seed, seed + 1, ..."""
    from sw2.data.envs import make

    env, seen = make(setup), []
    try:
        for k in range(HELD_OBSERVATIONS):
            obs, _ = env.reset(seed=seed + k)
            for _ in range(min(setup.max_episode_steps or 10_000, MAX_EPISODE_STEPS)):
                seen.append(np.asarray(obs, np.float32))
                obs, _, term, trunc, _ = env.step(act(np.asarray(obs)[None])[0])
                if term or trunc or len(seen) >= HELD_OBSERVATIONS:
                    break
            if len(seen) >= HELD_OBSERVATIONS:
                break
    finally:
        env.close()
    return np.stack(seen)


def _report_gif(setup: EnvSetup, act: Callable[[np.ndarray], np.ndarray]) -> bytes | None:
    from sw2.tasks.control_play import REPORT_FRAMES, episodes, gif_bytes

    try:
        return gif_bytes(episodes(setup, act, 1, TEST_SEED, REPORT_FRAMES)[1])
    except Exception as err:  # no renderer here, or it failed: the trained bundle goes without its GIF
        log.warning(f"sw2: report.html without an episode's GIF ({type(err).__name__}: {err})")
        return None


def _jsonable(action: Any) -> Any:
    return int(action) if np.ndim(action) == 0 else np.asarray(action, dtype=float).tolist()


def _read_observations(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: no such file of observations")
    if path.stat().st_size > MAX_PREDICT_BYTES:
        raise UserError(f"{path}: larger than {MAX_PREDICT_BYTES >> 20} MB; split it")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix.lower() == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        return pd.read_csv(path, header=None).to_numpy()
    except RecursionError:
        raise UserError(f"{path}: nested too deeply for observations") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as err:
        raise UserError(f"{path}: not observations sw2 reads (.json list, .csv of numbers, .npy): "
                        f"{str(err).splitlines()[0][:120]}") from None  # fmt: skip


TASKS.register("control")(Control("control", "mean_return"))
