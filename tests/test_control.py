"""task control: PPO and DQN acting in Gymnasium environments. The task conformance suite holds its tiny example
(CartPole PPO) to the contract: reload, predict, SIGKILL and resume to identical weights, ONNX, serve, hostile
input. Here: a short PPO run learns CartPole well beyond a random policy; `sw2 play` writes a GIF; continuous
actions (Pendulum) predict within their bounds and serve; DQN with normalised observations (Acrobot) resumes
exactly from a checkpoint; bad specs and observations are refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

import sw2
from sw2.engine.callbacks import Callback
from sw2.errors import UserError
from tests.conftest import sw2_here, write_spec
from tests.test_serve import Server

pytest.importorskip("gymnasium", reason="task control needs the rl extra: pip install -e '.[rl]'")

FAST = {"deterministic": True, "threads": 1, "precision": "fp32", "device": "cpu"}


def cartpole(**model) -> dict:
    m = {"name": "ppo", "timesteps": 12_288, "evaluations": 6, "eval_episodes": 10, "vector": "sync", **model}
    return {"name": "cartpole", "data": {"env": "CartPole-v1"}, "model": m, "train": FAST}


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> sw2.bundle.Bundle:
    """PPO on CartPole with the RL Zoo's hyper-parameters (8 copies, 32 steps, 20 passes), 12,288 steps."""
    folder = tmp_path_factory.mktemp("cartpole")
    return sw2.train(write_spec(folder, cartpole()), folder / "bundle")


def test_ppo_learns_cartpole_far_beyond_a_random_policy(policy):
    m = policy.metrics
    test, spec = m["test"], policy.spec
    assert spec.model.n_envs == 8 and spec.model.n_steps == 32 and spec.train.batch_size == 256  # the Zoo's
    assert spec.train.schedule == "linear" and spec.model.gae_lambda == 0.8 and spec.model.gamma == 0.98
    assert test["episodes"] == 20 and test["baseline"]["name"] == "random policy"
    assert test["mean_return"] > 4 * test["baseline"]["mean_return"] and test["mean_return"] > 150, test
    assert {"mean_return", "std_return", "mean_length"} <= test.keys() and test["target_return"] == 475
    history = [json.loads(line) for line in (policy.path / "history.jsonl").read_text().splitlines()]
    assert all("env_steps" in row and "train_return" in row and "approx_kl" in row for row in history)
    assert history[-1]["env_steps"] <= 12_288 and m["training"]["vector"]["mode"] == "sync"
    assert (policy.path / "episode.gif").stat().st_size > 1000
    page = (policy.path / "report.html").read_text()
    assert "random" in page and "image/gif" in page and "environment steps" in page


def test_a_policy_predicts_plays_and_writes_a_gif(policy, tmp_path):
    actions = policy.predict(np.zeros((3, 4)))
    assert actions.shape == (3,) and set(actions) <= {0, 1}
    shown = sw2.play(policy.path, 1, seed=5, gif=tmp_path / "play.gif")
    assert len(shown["episodes"]) == 1 and shown["frames"] == min(1500, shown["episodes"][0]["length"])
    assert (tmp_path / "play.gif").read_bytes()[:6] == b"GIF89a"
    r = sw2_here("play", str(policy.path), "--episodes", "1")
    assert r.returncode == 0 and "mean return" in r.stdout, r.stderr
    r = sw2_here("play", str(policy.path), "--gif", str(tmp_path / "play.gif"))
    assert r.returncode == 2 and "exists" in r.stderr  # not replaced without --force
    with pytest.raises(UserError, match="shaped"):
        policy.predict(np.zeros((2, 5)))


def test_continuous_actions_predict_within_bounds_and_serve(tmp_path):
    spec = {"name": "pendulum", "data": {"env": "Pendulum-v1"}, "train": FAST,
            "model": {"name": "ppo", "n_envs": 2, "n_steps": 64, "timesteps": 256, "evaluations": 2,
                      "eval_episodes": 2, "vector": "sync", "hidden": [16]}}  # fmt: skip
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "bundle", check=False)
    assert bundle.spec.model.n_steps == 64 and bundle.spec.model.gamma == 0.9  # given, then the Zoo's
    a = bundle.predict(np.random.default_rng(0).normal(size=(5, 3)) * 100)
    assert a.shape == (5, 1) and (np.abs(a) <= 2.0).all()
    with Server(bundle.path) as server:
        ok = server.post("/v1/predict", json={"observations": [[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]]})
        assert ok.status_code == 200 and len(ok.json()["predictions"][0]["action"]) == 1, ok.text
        wrong = server.post("/v1/predict", json={"observations": [[1.0, 0.0]]})
        assert wrong.status_code == 422 and "[3]" in wrong.json()["error"], wrong.text
        rows = server.post("/v1/predict", json={"rows": [{"a": 1}]})
        assert rows.status_code == 422 and "observations" in rows.json()["error"]
        assert server.get("/v1/model").json()["inputs"]["kind"] == "observations"


def test_async_copies_train_to_the_same_weights_as_sync(tmp_path):
    """Gymnasium's async vector env (a process per copy) steps the same episodes as the sync one."""
    weights = []
    for mode in ("sync", "async"):
        spec = cartpole(vector=mode, n_envs=2, n_steps=64, timesteps=256, evaluations=1, eval_episodes=1)
        (tmp_path / mode).mkdir()
        bundle = sw2.train(write_spec(tmp_path / mode, spec), tmp_path / mode / "bundle", check=False)
        assert bundle.metrics["training"]["vector"]["mode"] == mode
        weights.append(load_file(bundle.path / "model.safetensors"))
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])


class Crash(Callback):
    def on_epoch_begin(self, ctx):
        if ctx.epoch == 2:
            raise KeyboardInterrupt


def test_dqn_with_normalised_observations_resumes_to_identical_weights(tmp_path):
    """A crash at epoch 2: the resumed run replays the replay buffer, the target network, epsilon's draws
    and the normaliser's moments from epoch 1's checkpoint, to the uninterrupted run's weights."""
    spec = {"name": "acrobot", "data": {"env": "Acrobot-v1"}, "train": {**FAST, "batch_size": 32},
            "model": {"name": "dqn", "n_envs": 2, "timesteps": 512, "evaluations": 2, "eval_episodes": 1,
                      "train_freq": 16, "gradient_steps": 2, "learning_starts": 64, "target_update_interval": 128,
                      "buffer_size": 500, "normalize": True, "vector": "sync", "until_solved": False}}  # fmt: skip
    path = write_spec(tmp_path, spec)
    whole = sw2.train(path, tmp_path / "whole", check=False)
    with pytest.raises(KeyboardInterrupt):
        sw2.train(path, tmp_path / "resumed", check=False, callbacks=[Crash()])
    resumed = sw2.train(path, tmp_path / "resumed", check=False, resume=True)
    a, b = (load_file(x.path / "model.safetensors") for x in (whole, resumed))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert float(a["normalizer.count"]) > 450 and not (a["normalizer.mean"] == 0).all()  # 512 steps' moments
    assert whole.metrics["training"]["env_steps"] == 512


def test_a_crafted_environment_in_a_bundle_is_refused(policy, tmp_path):
    """preprocess.json naming a wrapper of another library's environments (which imports a module by the name
    it is given) or an unknown id: the bundle does not load."""
    import shutil

    for env, kwargs in (("GymV26Environment-v0", {"env_id": "os:system"}), ("Nope-v0", {})):
        bundle = shutil.copytree(policy.path, tmp_path / env)
        state = json.loads((bundle / "preprocess.json").read_text())
        (bundle / "preprocess.json").write_text(json.dumps({**state, "env": env, "kwargs": kwargs}))
        with pytest.raises(UserError, match="preprocess.json"):
            sw2.load(bundle).predict(np.zeros((1, 4)))


def test_train_fields_a_policy_ignores_are_refused(tmp_path):
    spec = write_spec(tmp_path, {**cartpole(), "train": {**FAST, "grad_clip": 1.0}})
    r = sw2_here("train", str(spec), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "train.grad_clip" in r.stderr and "model.max_grad_norm" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("data", "model", "says"),
    [
        ({"env": "CartPol-v1"}, {"name": "ppo"}, "did you mean 'CartPole-v1'"),
        ({"env": "Pendulum-v1"}, {"name": "dqn"}, "dqn picks among discrete actions"),
        ({"env": "CartPole-v1"}, {"name": "ppo", "n_envs": 0}, "model.n_envs"),
        ({"env": "CartPole-v1", "env_kwargs": {"nope": 1}}, {"name": "ppo"}, "data.env_kwargs"),
        ({"env": "CartPole-v1"}, {"name": "mlp"}, "task control trains a policy"),
        ({"env": "FrozenLake-v1", "env_kwargs": {"map_name": "9x9"}}, {"name": "ppo"}, "cannot be made with them"),
        ({"env": "FrozenLake-v1"}, {"name": "ppo"}, "observations are Discrete"),
        ({"env": "CartPole-v1"}, {"name": "dqn", "buffer_size": 10, "train_freq": 16}, "buffer_size: 10 is less"),
        ({"env": "CartPole-v1"}, {"name": "ppo", "hidden": [64, -1]}, "model.hidden"),
    ],
)
def test_bad_specs_are_one_line_errors_and_write_nothing(tmp_path, data, model, says):
    spec = write_spec(tmp_path, {"name": "bad", "data": data, "model": model, "train": FAST})
    r = sw2_here("train", str(spec), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_tune_searches_a_policy_by_its_judged_return(tmp_path):
    """sw2 tune on task control: its own space (lr, gamma, GAE's lambda, passes), each trial scored by its last
    judgement's mean return, no cross-validation (no target to fold); the best trained into a bundle."""
    pytest.importorskip("optuna", reason="sw2 tune needs the tune extra")
    spec = cartpole(n_envs=4, n_steps=64, timesteps=2048, evaluations=2, eval_episodes=3)
    tuned = sw2.tune(write_spec(tmp_path, spec), tmp_path / "tune", trials=2)
    assert len(tuned.leaderboard) == 2 and not tuned.confirmed
    assert {"train.lr", "model.gamma", "model.gae_lambda", "model.n_epochs"} <= set(tuned.study.best_params)
    assert tuned.bundle.metrics["test"]["episodes"] == 20 and tuned.best_spec.task == "control"
