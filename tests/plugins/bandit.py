"""A task plug-in whose examples come from a stream with state, written as a user would: `task: bandit`, a
contextual bandit. Each round a context (8 numbers) arrives, the policy pulls one of 4 arms, and a hidden
linear model pays the reward (context . w[arm], plus noise). There is no data file and no target: the spec's
`data.name: bandit` names the environment, its hidden model drawn from `data.split.seed`, and `data.limit`
sets the rounds per epoch (default 1024).

The policy network (`bandit_policy`, a registered model) estimates each arm's reward; it learns from its own
actions (epsilon-greedy: the greedy arm, or with probability `model.epsilon` one at random) by regressing the
reward of the arm it pulled. The stream (`Rounds`) plays the rounds: contexts, exploration draws and reward
noise come from its own torch Generator, whose state its `state_dict` returns, so a resumed run plays the very
rounds the interrupted one would have. A checkpoint is judged by the greedy policy's mean reward on fixed
held-out contexts (`val_metric`), the run beside the best achievable (the oracle's arm) and a random arm's.

    bundle = sw2.load("runs/bandit")
    bundle.task.act(bundle, contexts)      # (n, 8) contexts -> (n,) the greedy arm of each
    bundle.task.sample(bundle, 16, seed=0) # 16 rounds it plays: {"context", "arm", "reward"}

Registered by importing this module (or naming it in $SW2_PLUGINS for the CLI); nothing in sw2 changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine.context import Context
from sw2.engine.optim import lr_factor, make_optimizer
from sw2.engine.step import TrainStep
from sw2.engine.trainable import Batch, Stream, Trainable
from sw2.errors import UserError
from sw2.models.base import Model
from sw2.plugins import MODELS
from sw2.preflight import Check, Verdict
from sw2.spec import AutoModel, ModelOptions, Spec
from sw2.tasks import TASKS, Task
from sw2.tasks.base import HeldOut, Prepared, Scored, TinyExample

CONTEXT, ARMS = 8, 4  # the environment's shape
NOISE = 0.1  # the reward noise's standard deviation
HELD = 1000  # held-out contexts in each of val and test
ROUNDS = 1024  # rounds per epoch unless data.limit says


class PolicyOptions(ModelOptions):
    """bandit_policy: an MLP from a context to each arm's estimated reward (task bandit, a plug-in's)."""

    hidden: int = Field(32, ge=1, description="hidden units")
    epsilon: float = Field(0.1, ge=0, le=1, description="share of training rounds that pull an arm at random")


@MODELS.register("bandit_policy")
class Policy(Model):
    options = PolicyOptions

    def __init__(self, context: int, hidden: int, arms: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(context, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, arms)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def policy_options(spec: Spec) -> PolicyOptions:
    model = spec.model
    return model.resolved("bandit_policy") if isinstance(model, AutoModel) else model  # type: ignore[return-value]


@dataclass
class Setup:
    """The bundle's preprocess.json: the environment's shape and the seed of its hidden model."""

    context: int
    arms: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {"context": self.context, "arms": self.arms, "seed": self.seed}

    def weights(self) -> torch.Tensor:
        """The hidden reward model (context x arms)."""
        return torch.randn(self.context, self.arms, generator=torch.Generator().manual_seed(10_000 + self.seed))


def _contexts(setup: Setup, which: int) -> TensorSet:
    x = torch.randn(HELD, setup.context, generator=torch.Generator().manual_seed(20_000 + 10 * setup.seed + which))
    return TensorSet({"context": x}, torch.zeros(HELD, 0), np.arange(HELD).astype(str))


@dataclass
class Environment(Prepared):
    """The prepared "data": the environment (`encoder`), and fixed held-out contexts to judge the greedy policy
    on (`val`, `test`)."""

    rounds: int  # played per epoch


def judge(policy: nn.Module, x: torch.Tensor, w: torch.Tensor, device: torch.device | None = None) -> dict[str, Any]:
    """The greedy policy's expected reward on contexts `x` beside the oracle's and a random arm's."""
    was = policy.training
    policy.eval()
    device = device or next(policy.parameters()).device
    with torch.no_grad():
        arm = policy(x.to(device)).argmax(1).cpu()
    policy.train(was)
    pays = x @ w
    best, mean = pays.max(1).values, pays.gather(1, arm[:, None])[:, 0].mean().item()
    rate = (arm == pays.argmax(1)).float().mean().item()
    base = pays.mean().item()  # an arm at random, on average
    return {"n": len(x), "mean_reward": mean, "regret": best.mean().item() - mean, "best_arm_rate": rate,
            "best_possible": best.mean().item(),
            "baseline": {"name": "random arm", "mean_reward": base, "regret": best.mean().item() - base,
                         "best_arm_rate": 1 / w.shape[1]}}  # fmt: skip


class Rounds(Stream):
    """The rounds an epoch plays, `batch_size` at a time: contexts from the stream's own generator, the arm the
    current policy pulls (greedy, or at random with probability `epsilon`), the reward the hidden model pays.
    Its state (the generator's, the rounds played, the reward collected) is what an exact resume needs."""

    def __init__(self, policy: nn.Module, w: torch.Tensor, rounds: int, batch_size: int, epsilon: float, seed: int):
        self.policy, self.w, self.epsilon = policy, w, epsilon
        self.examples, self.batch_size = rounds, max(1, min(batch_size, rounds))
        self.generator = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")
        self.played, self.collected = 0, 0.0  # in all
        self.epoch_played, self.epoch_collected = 0, 0.0  # in the epoch under way (or the last one)

    def to(self, device: torch.device) -> None:
        self.device = device

    def shapes(self) -> dict[str, torch.Tensor]:
        return {"context": torch.zeros(1, self.w.shape[0])}

    def epoch(self, ctx: Context) -> Iterator[Batch]:
        g, n, dev = self.generator, self.batch_size, self.device
        self.epoch_played, self.epoch_collected = 0, 0.0
        for _ in range(self.steps_per_epoch):
            x = torch.randn(n, self.w.shape[0], generator=g)
            explore = torch.rand(n, generator=g) < self.epsilon
            random_arm = torch.randint(self.w.shape[1], (n,), generator=g)
            noise = torch.randn(n, generator=g) * NOISE
            with torch.no_grad():
                greedy = self.policy(x.to(dev)).argmax(1).cpu()
            arm = torch.where(explore, random_arm, greedy)
            reward = (x @ self.w).gather(1, arm[:, None])[:, 0] + noise
            idx = torch.arange(self.played, self.played + n)
            self.played, self.collected = self.played + n, self.collected + reward.sum().item()
            self.epoch_played, self.epoch_collected = self.epoch_played + n, self.epoch_collected + reward.sum().item()
            batch = {"context": x.to(dev), "arm": arm.to(dev), "reward": reward.to(dev)}
            yield batch, torch.empty(0, device=dev), idx.to(dev)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "played": self.played, "collected": self.collected,
                "epoch_played": self.epoch_played, "epoch_collected": self.epoch_collected}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.played, self.collected = int(state["played"]), float(state["collected"])
        self.epoch_played, self.epoch_collected = int(state["epoch_played"]), float(state["epoch_collected"])


class RewardRegression(TrainStep):
    """The policy's estimate of the pulled arm's reward regressed on the reward paid (squared error)."""

    def __init__(self, policy: nn.Module, spec: Spec) -> None:
        if spec.train.lr == "auto":
            raise UserError("train.lr: auto sweeps a supervised loss, which task bandit lacks; give a number")
        self.policy, self.train_spec = policy, spec.train
        self.optimizer = make_optimizer(policy, spec.train)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        lr = float(self.train_spec.lr) * lr_factor(self.train_spec, ctx.progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        estimate = self.policy(batch["context"]).gather(1, batch["arm"][:, None])[:, 0]
        loss = F.mse_loss(estimate, batch["reward"])
        (loss / ctx.accumulate).backward()
        if ctx.updates:
            if self.train_spec.grad_clip:
                nn.utils.clip_grad_norm_(self.policy.parameters(), self.train_spec.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


class Bandit(Task):
    metrics = ("mean_reward", "regret", "best_arm_rate")
    # its bundles are used from Python (`act`): no sw2 predict / serve / export / compress
    predicts: ClassVar[bool] = False
    exports: ClassVar[bool] = False
    compresses: ClassVar[bool] = False

    def check_spec(self, spec: Spec) -> None:
        super().check_spec(spec)
        if spec.data.name != "bandit" or spec.data.path:
            raise ValueError("data: task bandit plays its own environment; give data: {name: bandit}")
        if spec.model.name not in ("auto", "bandit_policy"):
            raise ValueError(f"model: task bandit trains model bandit_policy, not {spec.model.name}")

    def tiny_example(self, folder: Path) -> TinyExample:
        """No data file: 5 epochs of 1,024 rounds, 32 at a time."""
        train = {"epochs": 5, "batch_size": 32, "lr": 0.01, "schedule": "constant", "warmup": 0.0,
                 "deterministic": True, "threads": 1, "precision": "fp32", "device": "cpu"}  # fmt: skip
        spec = {"name": "tiny-bandit", "task": self.name, "data": {"name": "bandit"},
                "model": {"hidden": 32, "epsilon": 0.1}, "train": train}  # fmt: skip
        return TinyExample(spec)

    # ---- data ----------------------------------------------------------------------------------
    def prepare(self, spec: Spec, root: Path) -> Environment:
        setup = Setup(CONTEXT, ARMS, spec.data.split.seed)
        rounds = spec.data.limit or ROUNDS
        digest = hashlib.sha256(setup.weights().numpy().tobytes() + str(rounds).encode()).hexdigest()
        report = {"source": f"contextual bandit ({CONTEXT} features, {ARMS} arms, seed {setup.seed})",
                  "rounds_per_epoch": rounds, "val": HELD, "test": HELD}  # fmt: skip
        return Environment(setup, _contexts(setup, 1), _contexts(setup, 2), report, digest, rounds=rounds)

    def load_encoder(self, state: dict[str, Any]) -> Setup:
        return Setup(**state)

    def describe(self, data: Any) -> str:
        return f"{data.rounds} rounds an epoch, {HELD} held-out contexts each for val and test"

    def held_out(self, bundle: Any, spec: Spec, root: Path) -> HeldOut:
        data = self.prepare(spec, root)
        return HeldOut(data.test, data.val, data.test, data.fingerprint)

    def evaluate_file(self, bundle: Any, path: Path) -> dict[str, Any]:
        raise UserError(
            f"{bundle.path}: a bandit policy is judged by playing its environment, not on a data file; "
            "sw2 eval BUNDLE shows its scores on the held-out contexts"
        )

    def examples_from(self, bundle: Any, path: Path) -> Any:
        raise UserError(
            f"{bundle.path}: a bandit policy plays its environment; it takes no data file (sw2 report BUNDLE)"
        )

    # ---- training ------------------------------------------------------------------------------
    def candidates(self, spec: Spec, data: Any) -> list[Any]:
        return [policy_options(spec)]

    def trainable(self, spec: Spec, data: Any, **options: Any) -> Trainable:
        if options:
            raise UserError(f"task {self.name} learns from its own actions: {', '.join(sorted(options))} do not apply")
        o, setup = policy_options(spec), data.encoder
        kwargs = {"context": setup.context, "hidden": o.hidden, "arms": setup.arms}
        with torch.random.fork_rng(devices=[]):  # the same initial weights in every process
            torch.manual_seed(spec.train.seed)
            policy = Policy(**kwargs)
        w, val = setup.weights(), data.val.inputs["context"]
        stream = Rounds(policy, w, data.rounds, spec.train.batch_size, o.epsilon, spec.train.seed)

        def evaluate(device: torch.device | None = None) -> dict[str, float]:
            judged = judge(policy, val, w, device)
            reward = stream.epoch_collected / max(stream.epoch_played, 1)
            return {"val_metric": judged["mean_reward"], "val_regret": judged["regret"], "train_reward": reward}

        return Trainable(
            modules={"policy": policy},
            step=RewardRegression(policy, spec),
            batches=stream,
            evaluate=evaluate,
            metric="mean_reward",
            built={"policy": ("bandit_policy", kwargs)},
        )

    def preflight(self, spec: Spec, data: Any) -> list[Any]:
        def exploration() -> list[Verdict]:
            eps = policy_options(spec).epsilon
            if eps == 0:
                return [Verdict("exploration", "WARN", "epsilon 0: an arm the untrained policy shuns is never tried")]
            return [Verdict("exploration", "PASS", f"{eps:.0%} of training rounds pull an arm at random")]

        return [Check("exploration", frozenset(), exploration)]

    # ---- scores --------------------------------------------------------------------------------
    def score_run(self, model: nn.Module, data: Any, spec: Spec, result: Any) -> Scored:
        w = data.encoder.weights()
        metrics = {"val": judge(model, data.val.inputs["context"], w, torch.device("cpu")),
                   "test": judge(model, data.test.inputs["context"], w, torch.device("cpu"))}  # fmt: skip
        return Scored(metrics=metrics)

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        ok = scores["mean_reward"] > base["mean_reward"]
        return ok, (f"mean reward {scores['mean_reward']:.3f} vs a random arm's {base['mean_reward']:.3f} "
                    f"(best possible {scores['best_possible']:.3f})")  # fmt: skip

    def report_scores(self, run: Any) -> dict[str, Any]:
        return judge(run.b.model, run.test.inputs["context"], run.b.encoder.weights(), torch.device("cpu"))

    # ---- using a bundle ------------------------------------------------------------------------
    def act(self, bundle: Any, contexts: np.ndarray | torch.Tensor) -> np.ndarray:
        """The greedy arm for each context (n x features)."""
        x = torch.as_tensor(np.asarray(contexts, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != bundle.encoder.context:
            raise UserError(f"contexts of shape {tuple(x.shape)}; this policy takes n x {bundle.encoder.context}")
        with torch.no_grad():
            return bundle.model(x).argmax(1).numpy()

    def sample(self, bundle: Any, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """`n` rounds the greedy policy plays in the bundle's environment: each one's context, arm and reward
        (noise included); the same `seed`, the same rounds."""
        setup: Setup = bundle.encoder
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, setup.context, generator=gen)
        arm = torch.from_numpy(self.act(bundle, x))
        reward = (x @ setup.weights()).gather(1, arm[:, None])[:, 0] + torch.randn(n, generator=gen) * NOISE
        return {"context": x.numpy(), "arm": arm.numpy(), "reward": reward.numpy()}


TASKS.register("bandit")(Bandit("bandit", "mean_reward"))
