"""A trainable of another kind through `fit`: a GAN (a generator and a discriminator, two optimizers, no
target, no validation data) learns a 1-D Gaussian, and resumes bit-exactly after SIGKILL: a subprocess
trains and kills itself once a checkpoint is written (one subprocess: each costs seconds of imports), and the
test's process resumes that run and compares it with an uninterrupted one.

The run has a time budget, too long to run out. With a budget the lr schedule follows the clock, which would
break exactness; this step never reads `ctx.progress` (its optimizers keep their own constant lr), and the
spec says `schedule: constant`, `warmup: 0`, so the history's lr does not follow the clock either. Threads are
pinned (`threads: 1`, `deterministic`), so float sums round the same in every run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine import Trainable, fit
from sw2.engine.batches import Shuffled
from sw2.engine.callbacks import Callback
from sw2.engine.context import Context
from sw2.engine.step import TrainStep
from sw2.errors import UserError
from sw2.spec import parse_spec
from tests.conftest import ROOT

MEAN, STD = 3.0, 0.5  # the data's Gaussian
NOISE = 4  # the generator's input width
EPOCHS, KILL_AFTER = 5, 2  # the killed run dies once epoch KILL_AFTER's checkpoint is written


class GANStep(TrainStep):
    """One discriminator update (real against generated), then one generator update (fool the updated
    discriminator); the noise comes from torch's global generator, which the checkpoint carries."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, lr: float = 0.01) -> None:
        self.g, self.d = generator, discriminator
        self.opt_g = torch.optim.Adam(generator.parameters(), lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(discriminator.parameters(), lr, betas=(0.5, 0.999))

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt_g.load_state_dict(state["generator"])
        self.opt_d.load_state_dict(state["discriminator"])

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        real = batch["x"]
        fake = self.g(torch.randn(len(real), NOISE, device=ctx.device))
        ones, zeros = torch.ones(len(real), 1, device=ctx.device), torch.zeros(len(real), 1, device=ctx.device)
        d_loss = F.binary_cross_entropy_with_logits(self.d(real), ones)
        d_loss = d_loss + F.binary_cross_entropy_with_logits(self.d(fake.detach()), zeros)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(self.d(fake), ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return (d_loss + g_loss).detach()


class GeneratedMean(Callback):
    """The mean of the generator's output on fixed noise after each epoch: state a checkpoint must carry."""

    def __init__(self, generator: nn.Module) -> None:
        self.g, self.means = generator, []
        self.noise = torch.randn(512, NOISE, generator=torch.Generator().manual_seed(1))

    def mean(self) -> float:
        with torch.no_grad():
            device = next(self.g.parameters()).device
            return float(self.g(self.noise.to(device)).mean())

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        self.means.append(self.mean())

    def state_dict(self) -> dict[str, Any]:
        return {"means": self.means}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.means = list(state["means"])


class Kill(Callback):
    """SIGKILL this process as epoch `after` + 1 begins: after epoch `after`'s checkpoint is written."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_epoch_begin(self, ctx: Context) -> None:
        if ctx.epoch == self.after + 1:
            os.kill(os.getpid(), signal.SIGKILL)


def networks(width: int = 16) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator), initialised alike in every run; the caller's random state untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        g = nn.Sequential(nn.Linear(NOISE, width), nn.ReLU(), nn.Linear(width, 1))
        d = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return g, d


def train(
    folder: Path, kill_after: int = 0, resume: bool = False, width: int = 16
) -> tuple[nn.Module, nn.Module, GeneratedMean]:
    """(generator, discriminator, the GeneratedMean callback) after a run checkpointing in `folder`."""
    g, d = networks(width)
    samples = torch.randn(2048, 1, generator=torch.Generator().manual_seed(2)) * STD + MEAN
    data = TensorSet({"x": samples}, torch.zeros(len(samples)), np.arange(len(samples)).astype(str))
    step, means = GANStep(g, d), GeneratedMean(g)
    callbacks: list[Callback] = [means] + ([Kill(kill_after)] if kill_after else [])
    train_spec = {"epochs": EPOCHS, "batch_size": 64, "time_budget": 600, "schedule": "constant", "warmup": 0}
    spec = parse_spec(
        {"data": {"path": "x.csv"}, "train": {**train_spec, "deterministic": True, "threads": 1, "precision": "fp32"}}
    )
    trainable = Trainable(  # no validation data: nothing to evaluate
        modules={"generator": g, "discriminator": d}, step=step, batches=Shuffled(data, spec.augment, 0, 64)
    )
    fit(trainable, spec, checkpoint_dir=folder, resume=resume, verbose=False, callbacks=callbacks)
    return g, d, means


SCRIPT = """
import sys
from pathlib import Path

from tests.test_train_step import train

train(Path(sys.argv[1]), kill_after=int(sys.argv[2]))
"""


def test_gan_step_learns_and_resumes_bit_exactly_after_sigkill(tmp_path):
    """A subprocess trains and is killed; this process resumes its run, and trains another uninterrupted."""
    script = tmp_path / "gan.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(script), str(tmp_path / "cut"), str(KILL_AFTER)]
    killed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    saved = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert saved["state"]["epoch"] == KILL_AFTER and len(saved["callbacks"]["GeneratedMean"]["means"]) == KILL_AFTER

    g, d, means = train(tmp_path / "cut", resume=True)
    g_full, d_full, means_full = train(tmp_path / "full")
    for resumed, full in ((g, g_full), (d, d_full)):
        a, b = resumed.state_dict(), full.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert means.means == means_full.means and len(means.means) == EPOCHS

    before = GeneratedMean(networks()[0]).mean()
    assert abs(means.means[-1] - MEAN) < 0.3 * abs(before - MEAN), (before, means.means)  # it learned


def test_a_checkpoint_of_other_modules_does_not_resume(tmp_path):
    train(tmp_path)
    with pytest.raises(UserError, match="the checkpoint does not fit this run"):
        train(tmp_path, resume=True, width=8)


class Recorder(Callback):
    """What a caller's callback sees of a run."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.rows: list[dict[str, Any]] = []
        self.ended = False

    def on_epoch_begin(self, ctx: Context) -> None:
        self.epochs.append(ctx.epoch)

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def on_train_end(self, ctx: Context) -> None:
        self.ended = True


def test_train_runs_the_callers_callbacks_after_the_specs(tmp_path):
    """`sw2.train(spec, callbacks=[...])`, as Keras' `fit(callbacks=...)`: each epoch seen, with its validation."""
    import sw2
    from sw2.tasks import TASKS
    from tests.conftest import write_spec

    example = TASKS.get("classify").tiny_example(tmp_path)
    seen = Recorder()
    bundle = sw2.train(write_spec(tmp_path, example.spec), tmp_path / "b", check=False, callbacks=[seen])
    assert seen.epochs == list(range(1, 9)) and seen.ended
    assert [r["val_metric"] for r in seen.rows] == [r["val_metric"] for r in _history(bundle.path)]


def _history(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in (path / "history.jsonl").read_text().splitlines()]
