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
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

import sw2
from sw2.bundle import Bundle
from sw2.engine.callbacks import Callback
from sw2.engine.context import Context
from sw2.errors import UserError
from sw2.outputs import checkpoint_dir
from sw2.tasks import TASKS
from tests.conftest import ROOT, sw2_here, write_spec
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


class KillAfter(Callback):
    """SIGKILL this process as epoch `after` + 1 begins: epoch `after`'s checkpoint is on disk."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_epoch_begin(self, ctx: Context) -> None:
        if ctx.epoch == self.after + 1:
            os.kill(os.getpid(), signal.SIGKILL)


KILLED = """
import sys
import sw2
from tests.test_conformance import KillAfter
sw2.train(sys.argv[1], sys.argv[2], check=False, callbacks=[KillAfter(1)])
"""


@pytest.fixture(scope="module", params=registered())
def trained(request, tmp_path_factory, monkeypatch_module) -> tuple[Bundle, Path, Any]:
    """(the bundle of the task's tiny example, trained with its pre-flight; its folder; the example)."""
    for key, value in ENV.items():
        monkeypatch_module.setenv(key, value)
    folder = tmp_path_factory.mktemp(request.param)
    example = TASKS.get(request.param).tiny_example(folder)
    spec = write_spec(folder, example.spec)
    return sw2.train(spec, folder / "bundle", verbose=False), folder, example


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def history(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bundle / "history.jsonl").read_text().splitlines()]


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def test_trains_reloads_predicts_evaluates_reports_and_tests(trained):
    bundle, folder, example = trained
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


def test_resumes_after_sigkill_to_bit_identical_weights(trained, tmp_path):
    bundle, folder, _ = trained
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    out = tmp_path / "resumed"
    env = {**os.environ, **ENV}
    killed = subprocess.run([sys.executable, str(script), str(folder / "spec.yaml"), str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert checkpoint_dir(out).exists() and not out.exists()  # killed after a checkpoint, before the bundle
    sw2.train(folder / "spec.yaml", out, resume=True, check=False)
    same = ("epoch", "step", "train_loss", "val_loss", "val_metric")
    rows = [[{k: r.get(k) for k in same} for r in history(b)] for b in (bundle.path, out)]
    assert rows[0] == rows[1], rows  # epoch 1 from the checkpoint, then the same path
    a, b = load_file(bundle.path / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), "resumed weights differ"


def test_exports_to_onnx_or_refuses_in_one_line(trained):
    bundle, folder, _ = trained
    try:
        record = sw2.export(bundle.path, spec_from=folder / "spec.yaml")
    except UserError as refused:
        assert one_line(str(refused)), str(refused)
        return
    assert (bundle.path / "model.onnx").exists() and record


def test_serves_or_refuses_in_one_line(trained):
    bundle, _, example = trained
    if example.request is None:
        r = run_cli("serve", str(bundle.path), "--port", "0", timeout=120)
        assert r.returncode == 2 and one_line(r.stderr), r.stderr
        return
    path, body = example.request
    with Server(bundle.path, env=ENV) as server:
        answer = server.post(path, json=body)
        assert answer.status_code == 200, answer.text
        garbled = server.post(path, content=b'{"rows": [', headers={"content-type": "application/json"})
        assert 400 <= garbled.status_code < 500 and "error" in garbled.json()


def test_hostile_input_is_a_one_line_error_with_exit_2(trained, tmp_path):
    bundle, folder, example = trained
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
