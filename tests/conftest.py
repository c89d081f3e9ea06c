"""Shared fixtures: the CLI as a real subprocess, small synthetic data sets, the shared data sets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# Set by the README's test command (and so by .ci/run): every data set, package and browser a test needs is
# provided there, so a skip means something is missing and the run fails, listing the reasons. Unset (a
# developer's quick run), skips stay skips.
REQUIRE_ALL = "SW2_REQUIRE_ALL"
_skipped: list[str] = []


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a module-level importorskip
        _skipped.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get(REQUIRE_ALL) == "1" and _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if os.environ.get(REQUIRE_ALL) == "1" and _skipped:
        terminalreporter.section(f"{REQUIRE_ALL}=1: {len(_skipped)} skipped, so this run fails", red=True, bold=True)
        for line in _skipped:
            terminalreporter.line(line)
        terminalreporter.line("install what the README's test command installs, or run without SW2_REQUIRE_ALL")


def datasets_dir() -> Path:
    return Path(os.environ.get("SW2_DATASETS", ROOT.parent / "shared" / "datasets"))


def need_dataset(name: str) -> Path:
    path = datasets_dir() / name
    if not path.exists():
        pytest.skip(f"{path} is absent (set SW2_DATASETS to the folder holding the shared data sets)")
    return path


def sw2(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the `sw2` command in a fresh process, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sw2.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


# a script that runs `sw2.train(SPEC, OUT)` and SIGKILLs itself as epoch 2 begins (epoch 1's checkpoint is on disk)
KILLED = """
import os, signal, sys

import sw2
from sw2.engine.callbacks import Callback


class KillAfter(Callback):  # SIGKILL as epoch 2 begins: epoch 1's checkpoint is on disk
    def on_epoch_begin(self, ctx):
        if ctx.epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)


sw2.train(sys.argv[1], sys.argv[2], check=False, callbacks=[KillAfter()])
"""


def sw2_here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `sw2` in this process (its `main`): for commands that stop early (bad input, exit 2), and for the
    commands that follow a test's one real `sw2 train` process, where a fresh process would cost seconds of
    imports and test nothing more. Output and exit code as `sw2()` gives them."""
    import contextlib
    import io

    from sw2.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as stop:  # argparse's usage errors
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["sw2", *args], code, out.getvalue(), err.getvalue())


def table_cells(text: str, row: str) -> list[str]:
    """The cells after the first of the first row of a printed table whose first is `row`: a rich table's on a
    terminal, or the plain one (columns two or more spaces apart) that sw2 prints into a pipe."""
    for line in text.splitlines():
        line = line.strip()
        cells = [c.strip() for c in (line.strip("│┃").split("│") if "│" in line else re.split(r" {2,}", line))]
        if cells[0] == row:
            return cells[1:]
    raise AssertionError(f"no table row {row!r} in:\n{text}")


def write_spec(folder: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def stripes(kind: str, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """A noisy RGB image of horizontal or vertical stripes (an easy two-class problem)."""
    base = (np.arange(size) // 2 % 2 * 200).astype(np.float32)
    img = np.broadcast_to(base[:, None] if kind == "h" else base[None, :], (size, size))
    rgb = np.stack([img] * 3, axis=-1) + rng.normal(0, 25, (size, size, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_image_folder(root: Path, per_class: int = 24, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for kind in ("h", "v"):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(stripes(kind, rng)).save(root / kind / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sw2 cache of what the session and module fixtures train (each test gets its own below): never the
    user's home, and nothing from an earlier run (a fresh machine's CI finds no cached judge or images)."""
    folder = tmp_path_factory.mktemp("sw2-session-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SW2_CACHE", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own sw2 cache (the precision timings), inherited by the CLI processes it starts: no test
    reads another's timing, none writes to the user's home."""
    folder = tmp_path_factory.mktemp("sw2-cache")
    monkeypatch.setenv("SW2_CACHE", str(folder))
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture
def fast_train() -> dict:
    return {"epochs": 8, "batch_size": 16, "lr": 0.01}


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory):
    """The demo's bundle (examples/digits.yaml), trained once for every test that reads it."""
    import sw2

    return sw2.train(ROOT / "examples" / "digits.yaml", tmp_path_factory.mktemp("runs") / "digits", verbose=False)


PENGUINS = {
    "name": "penguins",
    "data": {"source": "package", "name": "penguins", "split": {"val": 0.15, "test": 0.2}},
    "target": "species",
    "model": {"name": "mlp"},
    "train": {"epochs": 10},
    "serve": {"mask": ["island"], "log_columns": ["island", "bill_length_mm"], "drift_window": 200},
}


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small table classifier (palmerpenguins, an mlp), trained once for the server's tests."""
    import sw2

    folder = tmp_path_factory.mktemp("penguins")
    return sw2.train(write_spec(folder, PENGUINS), folder / "bundle", verbose=False, check=False).path


@pytest.fixture(scope="session")
def digits_exported(digits) -> Path:
    """The digits bundle with its ONNX graph."""
    import sw2

    if not (digits.path / "model.onnx").exists():
        sw2.export(digits)
    return digits.path


@pytest.fixture(scope="session")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer character GPT of a little verse, trained for one epoch."""
    import sw2
    from tests.test_language import lm_spec, verse

    folder = tmp_path_factory.mktemp("lm")
    (folder / "verse.txt").write_text(verse(800), encoding="utf-8")
    spec = write_spec(folder, {**lm_spec("verse.txt", widths=[32], layers=1, heads=2), "train": {"epochs": 1}})
    return sw2.train(spec, folder / "lm", verbose=False, check=False).path
