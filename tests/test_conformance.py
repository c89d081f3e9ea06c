"""The task conformance suite: every registered task, and the task plug-ins of tests/plugins (loaded as a
user's would be), held to one contract, as scikit-learn's `check_estimator` holds every estimator to one.

Each task gives a tiny example of itself (`Task.tiny_example`: data written into a folder and a spec that
trains on it in seconds, deterministically); the suite trains it (pre-flight included) and checks that the
bundle reloads and predicts or samples, evaluates, has its report, runs its model tests (or refuses them in
one line), resumes after SIGKILL to bit-identical weights, exports to ONNX (or refuses in one line), serves
(or refuses in one line), and answers hostile input with a one-line error and exit code 2. A new task gets
all of it by being registered.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

import sw2
from sw2.bundle import Bundle
from sw2.errors import UserError
from sw2.outputs import checkpoint_dir
from sw2.tasks import TASKS
from tests.conftest import KILLED, ROOT, sw2_here, write_spec
from tests.conftest import sw2 as run_cli
from tests.test_serve import Server

PLUGINS = Path(__file__).parent / "plugins"
# the task plug-ins of tests/plugins, imported as $SW2_PLUGINS would
PLUGIN_MODULES = ["multilabel", "digits_autoencoder", "bandit"]
ENV = {"SW2_PLUGINS": ",".join(PLUGIN_MODULES), "PYTHONPATH": f"{PLUGINS}{os.pathsep}{ROOT}"}


def registered() -> list[str]:
    """Every task the registry knows once the plug-ins are imported."""
    sys.path.insert(0, str(PLUGINS))
    for module in PLUGIN_MODULES:
        __import__(module)
    return sorted(TASKS.names())


NAMES = registered()


@dataclass
class Run:
    """A task's tiny example: its bundle (trained with its pre-flight), folder and example, and the processes
    started for it: a run that kills itself after epoch 1's checkpoint, and a server of the bundle."""

    bundle: Bundle
    folder: Path
    example: Any
    killed: subprocess.Popen | None = None
    server: Server | None = None


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def runs(tmp_path_factory, monkeypatch_module) -> Iterator[dict[str, Run]]:
    """Every task's run; the killed runs and the servers, each a process of its own, start together."""
    for key, value in ENV.items():
        monkeypatch_module.setenv(key, value)
    out = {}
    for name in NAMES:
        folder = tmp_path_factory.mktemp(name)
        example = TASKS.get(name).tiny_example(folder)
        out[name] = Run(sw2.train(write_spec(folder, example.spec), folder / "bundle", verbose=False), folder, example)
    script = tmp_path_factory.mktemp("scripts") / "killed.py"
    script.write_text(KILLED)
    try:
        for run in out.values():
            log = (run.folder / "killed.log").open("w")
            command = [sys.executable, str(script), str(run.folder / "spec.yaml"), str(run.folder / "resumed")]
            run.killed = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=log)
            run.server = Server(run.bundle.path, env=ENV) if run.example.request else None
        yield out
    finally:
        for run in out.values():
            if run.server is not None:
                run.server.stop()
            if run.killed is not None and run.killed.poll() is None:
                run.killed.kill()


@pytest.fixture(params=NAMES)
def trained(request, runs) -> Run:
    return runs[request.param]


def history(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bundle / "history.jsonl").read_text().splitlines()]


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def test_trains_reloads_predicts_evaluates_reports_and_tests(trained):
    bundle, folder, example = trained.bundle, trained.folder, trained.example
    files = {p.name for p in bundle.path.iterdir()}
    assert {"model.safetensors", "model.json", "preprocess.json", "metrics.json", "spec.yaml", "tensorboard"} <= files
    verdicts = bundle.metrics["preflight"]["verdicts"]
    assert verdicts and all(v["status"] in ("PASS", "WARN", "SKIP") for v in verdicts), verdicts
    assert all(v["message"] for v in verdicts if v["status"] == "SKIP")  # a skipped check says why
    again = sw2.load(bundle.path)
    if example.predict:
        assert len(again.predict(folder / example.predict)) == 5
    elif bundle.spec.task == "generate_text":
        assert isinstance(sw2.generate(again, "one", tokens=5, seed=0), str)
    else:
        assert again.task.sample(again, 4) is not None
    assert sw2.evaluate(again), "no metrics saved at training"
    if "test" in bundle.metrics or "val" in bundle.metrics:
        assert (bundle.path / "report.html").stat().st_size > 1000
    if bundle.spec.tests:
        assert bundle.metrics["tests"] and all(t["passed"] for t in bundle.metrics["tests"])
        assert (bundle.path / "tests.xml").exists()
        outcomes = sw2.verify(again, tests_from=folder / "spec.yaml")
        assert outcomes and all(o.passed for o in outcomes)
    else:
        with pytest.raises(UserError, match="no tests"):
            sw2.verify(again)


def test_resumes_after_sigkill_to_bit_identical_weights(trained):
    bundle, folder, out = trained.bundle, trained.folder, trained.folder / "resumed"
    assert trained.killed is not None
    code = trained.killed.wait(timeout=300)
    assert code == -signal.SIGKILL, (folder / "killed.log").read_text()[-2000:]
    assert checkpoint_dir(out).exists() and not out.exists()  # killed after a checkpoint, before the bundle
    r = sw2_here("train", str(folder / "spec.yaml"), "--out", str(out), "--resume", "--no-check", "--quiet")
    assert r.returncode == 0, r.stderr
    same = ("epoch", "step", "train_loss", "val_loss", "val_metric")
    rows = [[{k: r.get(k) for k in same} for r in history(b)] for b in (bundle.path, out)]
    assert rows[0] == rows[1], rows  # epoch 1 from the checkpoint, then the same path
    a, b = load_file(bundle.path / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), "resumed weights differ"


def test_trains_again_into_its_own_bundle(trained, tmp_path):
    """`--out` of an earlier bundle of the task is replaced: every file in it is one sw2 wrote (the task's own
    too, recorded in files.json)."""
    again = shutil.copytree(trained.bundle.path, tmp_path / "bundle")
    r = sw2_here("train", str(trained.folder / "spec.yaml"), "--out", str(again), "--no-check", "--quiet")
    assert r.returncode == 0, r.stderr
    (again / "mine.txt").write_text("a user's file")
    r = sw2_here("train", str(trained.folder / "spec.yaml"), "--out", str(again), "--no-check", "--quiet")
    assert r.returncode == 2 and "mine.txt" in r.stderr and (again / "mine.txt").exists(), r.stderr


def test_exports_to_onnx_or_refuses_in_one_line(trained):
    bundle, folder = trained.bundle, trained.folder
    try:
        record = sw2.export(bundle.path, spec_from=folder / "spec.yaml")
    except UserError as refused:
        assert one_line(str(refused)), str(refused)
        return
    assert (bundle.path / "model.onnx").exists() and record


def test_serves_or_refuses_in_one_line(trained):
    bundle, example = trained.bundle, trained.example
    if trained.server is None:
        r = run_cli("serve", str(bundle.path), "--port", "0", timeout=120)
        assert r.returncode == 2 and one_line(r.stderr), r.stderr
        return
    path, body = example.request
    with trained.server as server:  # started with the others by `runs`; ready once entered
        answer = server.post(path, json=body)
        assert answer.status_code == 200, answer.text
        garbled = server.post(path, content=b'{"rows": [', headers={"content-type": "application/json"})
        assert 400 <= garbled.status_code < 500 and "error" in garbled.json()


def test_hostile_input_is_a_one_line_error_with_exit_2(trained, tmp_path):
    bundle, example = trained.bundle, trained.example
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\xff\xfe garbage \x00" * 64)
    use = (
        ["predict", str(bundle.path), str(junk)] if example.predict else ["eval", str(bundle.path), "--data", str(junk)]
    )
    r = sw2_here(*use)
    assert r.returncode == 2 and one_line(r.stderr), (r.returncode, r.stderr)
    typo = dict(example.spec, trian={"epochs": 1})
    r = sw2_here("train", str(write_spec(tmp_path, typo)), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and one_line(r.stderr) and "trian" in r.stderr, r.stderr
