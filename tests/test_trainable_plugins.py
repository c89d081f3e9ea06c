"""Two task plug-ins that learn no target, each one file outside sw2 loaded through $SW2_PLUGINS as a user's
would be, train through `sw2 train`, resume bit-identically after SIGKILL, bundle, reload and are put to use:

- tests/plugins/digits_autoencoder.py (`task: reconstruct`): two networks (encoder, decoder), two optimizers
  with their own lrs, no target; judged by the reconstruction error on held-out digits; the bundle
  reconstructs and samples;
- tests/plugins/bandit.py (`task: bandit`): a contextual bandit whose batches come from a stream with its own
  random generator (contexts, exploration, reward noise), the policy learning from its own actions; judged by
  the greedy policy's mean reward on held-out contexts; the checkpoint carries the stream's state.

Each plug-in's own `tiny_example` writes its data and spec. The runs, shared by the tests, are subprocesses
started together (the uninterrupted `sw2 train` and a run killed after epoch K's checkpoint), then
`sw2 train --resume` of the killed one, run in this process. The pre-flight (`sw2 check`, and the one in
`sw2 train`) runs the checks that apply (gradient health drives the trainable's own step on its own stream) and
SKIPs the supervised ones with the reason.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import sw2
from sw2.errors import UserError
from sw2.plugins import MODELS, TASKS
from tests.conftest import ROOT, sw2_here, write_spec

PLUGINS = Path(__file__).parent / "plugins"
MODULES = {"reconstruct": "digits_autoencoder", "bandit": "bandit"}  # task -> the plug-in module registering it
MODELS_OF = {"digits_autoencoder": ("digits_encoder", "digits_decoder"), "bandit": ("bandit_policy",)}
KILL_AFTER = {"reconstruct": 3, "bandit": 2}  # the killed run dies once this epoch's checkpoint is written
SUPERVISED_CHECKS = ("speed", "loss at init", "overfit one batch", "input-independent baseline")

KILLED = """
import os, signal, sys

from sw2.api import train
from sw2.engine.callbacks import Callback


class Kill(Callback):
    def on_epoch_begin(self, ctx):
        if ctx.epoch == int(sys.argv[3]) + 1:  # epoch argv[3]'s checkpoint is written
            os.kill(os.getpid(), signal.SIGKILL)


train(sys.argv[1], sys.argv[2], callbacks=[Kill()])
"""


@dataclass
class Runs:
    """One plug-in's runs: its spec, the uninterrupted bundle, the killed run's checkpoint and the resumed bundle."""

    folder: Path
    spec: Path
    full: Path
    resumed: Path
    at_kill: Path  # a copy of the killed run's checkpoint folder
    logs: dict[str, tuple[int, str]]  # run -> (exit code, stdout + stderr)

    def ok(self, run: str) -> str:
        code, out = self.logs[run]
        assert code == 0, out[-3000:]
        return out

    def metrics(self, bundle: Path | None = None) -> dict[str, Any]:
        return json.loads(((bundle or self.full) / "metrics.json").read_text())

    def history(self, bundle: Path | None = None) -> list[dict[str, Any]]:
        return [json.loads(line) for line in ((bundle or self.full) / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def plugins():
    """The plug-ins registered in this process as $SW2_PLUGINS registers them, then forgotten (those this
    fixture imported: another module may have imported them before)."""
    fresh = {task: module for task, module in MODULES.items() if module not in sys.modules}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SW2_PLUGINS", ",".join(MODULES.values()))
        mp.syspath_prepend(str(PLUGINS))
        yield {task: importlib.import_module(module) for task, module in MODULES.items()}
    for task, module in fresh.items():
        TASKS.unregister(task)
        for name in MODELS_OF[module]:
            MODELS.unregister(name)
        sys.modules.pop(module, None)


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("w") as out:  # the child writes to its own copy
        return subprocess.Popen(cmd, cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def runs(plugins, tmp_path_factory) -> dict[str, Runs]:
    """For each plug-in, at once: a run killed after epoch K's checkpoint, and `sw2 train` uninterrupted (four
    processes); each killed run is resumed by `sw2 train --resume` as soon as it dies, in this process (the
    CLI's `main`: the same code, without the seconds of a third process's imports)."""
    root = tmp_path_factory.mktemp("trainable_plugins")
    env = {**os.environ, "SW2_PLUGINS": ",".join(MODULES.values()), "PYTHONPATH": f"{PLUGINS}:{ROOT}",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    (root / "killed.py").write_text(KILLED)
    found, started = {}, {}
    for task in MODULES:
        folder = root / task
        folder.mkdir()
        spec = write_spec(folder, TASKS.get(task).tiny_example(folder).spec)
        r = found[task] = Runs(folder, spec, folder / "full", folder / "cut", folder / "at_kill", {})
        killed = [sys.executable, str(root / "killed.py"), str(spec), str(r.resumed), str(KILL_AFTER[task])]
        started[task, "killed"] = _start(killed, folder / "killed.log", env)
        cli = [sys.executable, "-m", "sw2.cli", "train", str(spec), "--out", str(r.full)]
        started[task, "full"] = _start(cli, folder / "full.log", env)
    try:
        for task, run in sorted(started, key=lambda key: key[1] != "killed"):  # the killed runs first
            r = found[task]
            r.logs[run] = (started[task, run].wait(timeout=300), (r.folder / f"{run}.log").read_text())
            if run == "killed":
                if (r.folder / "cut.checkpoint" / "checkpoint.pt").exists():
                    shutil.copytree(r.folder / "cut.checkpoint", r.at_kill)
                done = sw2_here("train", str(r.spec), "--out", str(r.resumed), "--resume")
                r.logs["resumed"] = (done.returncode, done.stdout + done.stderr)
    finally:
        for process in started.values():  # none outlives a failure here
            if process.poll() is None:
                process.kill()
                process.wait()
    return found


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _losses(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each epoch's figures that training decides (not its clock)."""
    return [tuple(row.get(k) for k in ("epoch", "step", "train_loss", "val_loss", "val_metric")) for row in history]


def _killed_and_resumed(r: Runs, task: str) -> dict[str, Any]:
    """Assert the killed run died by SIGKILL after epoch K's checkpoint and the resumed run ended as the
    uninterrupted one, to the bit; return the checkpoint the kill left."""
    code, out = r.logs["killed"]
    assert code == -signal.SIGKILL, out[-3000:]
    saved = torch.load(r.at_kill / "checkpoint.pt", weights_only=True)
    assert saved["state"]["epoch"] == KILL_AFTER[task] and len(saved["state"]["history"]) == KILL_AFTER[task]
    r.ok("resumed")
    assert not (r.folder / "cut.checkpoint").exists()  # gone once the bundle is in place
    assert _same_weights(r.full, r.resumed)
    assert _losses(r.history(r.resumed)) == _losses(r.history())
    assert r.metrics(r.resumed)["test"] == r.metrics()["test"]
    return saved


def _preflight(verdicts: list[dict[str, Any]], task: str, own: str) -> None:
    """The supervised checks SKIP with the reason, gradient health and the task's own check run and pass."""
    by_check = {v["check"]: v for v in verdicts}
    for name in SUPERVISED_CHECKS:
        v = by_check[name]
        assert v["status"] == "SKIP" and "supervised" in v["message"] and f"a {task} trainable" in v["message"], v
    assert by_check["gradient health"]["status"] == "PASS", by_check["gradient health"]
    assert "finite" in by_check["gradient health"]["message"]
    assert by_check[own]["status"] == "PASS", by_check[own]
    assert not [v for v in verdicts if v["status"] == "FAIL"], verdicts


# ---- the autoencoder: two networks, two optimizers, no target ----------------------------------------------
def test_autoencoder_trains_through_sw2_train(runs):
    r = runs["reconstruct"]
    r.ok("full")
    files = {p.name for p in r.full.iterdir()}
    assert {"model.safetensors", "model.json", "preprocess.json", "metrics.json", "history.jsonl", "curves.png",
            "report.html"} <= files  # fmt: skip
    arch = json.loads((r.full / "model.json").read_text())
    assert {k: m["name"] for k, m in arch["modules"].items()} == {
        "encoder": "digits_encoder",
        "decoder": "digits_decoder",
    }
    weights = load_file(str(r.full / "model.safetensors"))
    assert {k.split(".")[0] for k in weights} == {"encoder", "decoder"}

    history = r.history()
    assert len(history) == 6 and history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_loss"] == min(row["val_loss"] for row in history) < 0.6 * history[0]["val_loss"]
    assert all(row["val_metric"] == -row["val_loss"] for row in history)  # val_metric is -MSE
    test = r.metrics()["test"]
    assert test["mse"] < 0.6 * test["baseline"]["mse"], test  # well below the mean image's error
    assert "reconstruction MSE" in (r.full / "report.html").read_text()


def test_autoencoder_resumes_bit_identically_after_sigkill(runs):
    saved = _killed_and_resumed(runs["reconstruct"], "reconstruct")
    assert set(saved["modules"]) == {"encoder", "decoder"}
    optimizers = saved["step"]  # one each, with its own lr (model.decoder_lr; the encoder's is train.lr)
    assert {k: {g["lr"] for g in o["param_groups"]} for k, o in optimizers.items()} == {
        "encoder": {0.01},
        "decoder": {0.005},
    }
    assert all(o["state"] for o in optimizers.values())


def test_autoencoder_bundle_reloads_reconstructs_and_samples(runs, plugins):
    r = runs["reconstruct"]
    bundle = sw2.load(r.full)
    task = bundle.task
    assert bundle.networks == ["encoder", "decoder"]
    held = task.prepare(bundle.spec, r.folder).test.inputs["pixels"] * bundle.encoder.scale  # in the data's units
    images = held.reshape(-1, 8, 8).numpy()
    again = task.reconstruct(bundle, images)
    assert again.shape == images.shape
    mse = float(np.mean((again - images) ** 2)) / bundle.encoder.scale**2
    assert mse == pytest.approx(r.metrics()["test"]["mse"], rel=1e-4)  # the reloaded networks are the trained ones

    samples = task.sample(bundle, 64, seed=0)
    assert samples.shape == (64, 8, 8) and np.isfinite(samples).all()
    assert np.array_equal(samples, task.sample(bundle, 64, seed=0))
    assert not np.array_equal(samples, task.sample(bundle, 64, seed=1))
    flat = images.reshape(len(images), -1)
    noise = np.random.default_rng(0).normal(flat.mean(0), flat.std(0), (64, flat.shape[1]))

    def nearest(x: np.ndarray) -> float:  # mean distance to the nearest real digit
        return float(np.sqrt(((x[:, None, :] - flat[None]) ** 2).sum(-1)).min(1).mean())

    assert nearest(samples.reshape(64, -1)) < 0.7 * nearest(noise)  # digit-like, not noise of the same spread

    digits = str(r.folder / "digits.csv")
    out = sw2_here("eval", str(r.full), "--data", digits, "--json", str(r.folder / "eval.json"))
    scored = json.loads((r.folder / "eval.json").read_text())
    assert out.returncode == 0 and scored["n"] == 1797 and scored["mse"] < 0.6 * scored["baseline"]["mse"], scored
    out = sw2_here("predict", str(r.full), digits)  # a model of no examples: refused in one line
    assert out.returncode == 2 and "reconstruct model: it takes no examples" in out.stderr, out.stderr


# ---- the bandit: a stream with state, learning from its own actions ---------------------------------------
def test_bandit_trains_through_sw2_train(runs):
    r = runs["bandit"]
    r.ok("full")
    assert json.loads((r.full / "model.json").read_text())["name"] == "bandit_policy"
    history = r.history()
    assert [row["step"] for row in history] == [32, 64, 96, 128, 160]  # 1,024 rounds an epoch, 32 at a time
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]
    assert history[-1]["train_reward"] > history[0]["train_reward"]  # its own actions pay more as it learns
    assert history[-1]["val_metric"] > history[0]["val_metric"]
    test = r.metrics()["test"]
    random_arm, best = test["baseline"]["mean_reward"], test["best_possible"]
    assert test["mean_reward"] > random_arm + 0.9 * (best - random_arm), test  # near the oracle, far above random
    assert test["best_arm_rate"] > 0.8 > 0.25 == test["baseline"]["best_arm_rate"]


def test_bandit_resumes_exactly_with_its_streams_state(runs, plugins):
    r = runs["bandit"]
    saved = _killed_and_resumed(r, "bandit")
    stream = saved["batches"]
    assert stream["played"] == KILL_AFTER["bandit"] * 1024 and stream["generator"].dtype == torch.uint8

    # the control: the same resume with the stream's state dropped plays other rounds and ends elsewhere
    from sw2.engine import fit
    from sw2.runs import run_key
    from sw2.spec import load_spec

    spec, folder = load_spec(r.spec)
    task = TASKS.get("bandit")
    data = task.prepare(spec, folder)
    spec = spec.for_model(task.candidates(spec, data)[0])
    trainable = task.trainable(spec, data)
    trainable.batches.load_state_dict = lambda state: None
    control = shutil.copytree(r.at_kill, r.folder / "control")
    fit(trainable, spec, checkpoint_dir=control, resume=True, run_key=run_key(spec, data.fingerprint), verbose=False)
    full = load_file(str(r.full / "model.safetensors"))
    assert not all(torch.equal(v, full[k]) for k, v in trainable.modules["policy"].state_dict().items())


def test_bandit_bundle_reloads_and_acts(runs, plugins):
    r = runs["bandit"]
    bundle = sw2.load(r.full)
    task = bundle.task
    data = task.prepare(bundle.spec, r.folder)
    contexts = data.test.inputs["context"]
    arms = task.act(bundle, contexts.numpy())
    assert arms.shape == (len(contexts),) and set(arms.tolist()) <= set(range(4))
    pays = contexts @ bundle.encoder.weights()
    got = float(pays[torch.arange(len(arms)), torch.from_numpy(arms)].mean())
    assert got == pytest.approx(r.metrics()["test"]["mean_reward"], rel=1e-5)
    with pytest.raises(UserError, match="this policy takes n x 8"):
        task.act(bundle, np.zeros((3, 5)))
    rounds = task.sample(bundle, 2000, seed=0)  # played greedily: paid about what the test split scored
    assert np.array_equal(rounds["arm"], task.act(bundle, rounds["context"]))
    assert rounds["reward"].mean() > 0.9 * r.metrics()["test"]["best_possible"]
    out = sw2_here("eval", str(r.full))  # its saved scores
    assert out.returncode == 0 and "mean_reward" in out.stdout and "random arm" in out.stdout, out.stdout


# ---- the pre-flight: sw2 check and the one in sw2 train ----------------------------------------------------
@pytest.mark.parametrize("task, own", [("reconstruct", "bottleneck"), ("bandit", "exploration")])
def test_preflight_runs_what_applies_and_skips_the_rest_with_a_reason(runs, plugins, task, own):
    r = runs[task]
    out = sw2_here("check", str(r.spec))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SKIP") == len(SUPERVISED_CHECKS) and "Traceback" not in out.stderr
    verdicts = [v.to_json() for v in sw2.check(r.spec)]
    _preflight(verdicts, task, own)

    recorded = r.metrics()["preflight"]["verdicts"]  # the pre-flight of `sw2 train`, and the check after it
    _preflight(recorded, task, own)
    assert {v["check"]: v["status"] for v in recorded}["beats dumb baseline"] == "PASS"
    assert [v["check"] for v in recorded if v["status"] == "SKIP"] == list(SUPERVISED_CHECKS)
