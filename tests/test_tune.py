"""sw2 tune: an Optuna search on the val split (never the test split) that leaves a leaderboard, the best spec,
plots, TensorBoard hparams and the best bundle; continues after SIGINT or SIGKILL with --resume without
repeating finished trials; two workers share one study in a real PostgreSQL server; bad input is one line."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

optuna = pytest.importorskip("optuna")

import sw2  # noqa: E402
from sw2.tasks import TASKS  # noqa: E402
from sw2.tuning import trial as trial_module  # noqa: E402
from tests.conftest import ROOT, sw2_here, write_spec  # noqa: E402

PLUGINS = Path(__file__).parent / "plugins"

WINE = {
    "name": "wine",
    "data": {"source": "package", "name": "wine", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
    "task": "classify",
    "model": {"name": "mlp", "widths": [32, 32]},
    "train": {"epochs": 20, "batch_size": 32, "lr": 0.003, "threads": 1},
    "tune": {
        "train.lr": {"log": [1e-4, 0.03]},
        "train.weight_decay": {"log": [1e-6, 0.1]},
        "model.widths": {"choice": [[16], [32, 32], [64, 64]]},
        "train.epochs": {"int": [5, 30]},
    },
}


def study_of(out: Path, name: str = "wine") -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(out / "study.journal"))))


def finished(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def test_search_writes_leaderboard_best_spec_plots_and_bundle_without_reading_test(tmp_path, monkeypatch) -> None:
    """Every row a trial trains or scores on is a train or val row; none is a test row."""
    seen: list[torch.Tensor] = []
    real_fit, real_predict = trial_module.fit, trial_module.predict

    def spy_fit(trainable, spec, **kw):
        train, val = trainable.supervision.train, trainable.supervision.val
        seen.extend([*train.inputs.values(), *val.inputs.values()])
        return real_fit(trainable, spec, **kw)

    def spy_predict(model, inputs, **kw):
        seen.extend(inputs.values())
        return real_predict(model, inputs, **kw)

    # trial.fit_and_predict trains and scores both the trials and the leaders' cross-validation
    monkeypatch.setattr(trial_module, "fit", spy_fit)
    monkeypatch.setattr(trial_module, "predict", spy_predict)
    done = sw2.tune(WINE, tmp_path / "wine-tune", trials=6)
    monkeypatch.undo()

    out = done.out
    for name in ("leaderboard.md", "leaderboard.csv", "best.yaml", "tune_history.png", "tune_importance.png"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard hparams"
    assert len(done.leaderboard) == 6 and {"trial", "state", "val", "seconds", "train.lr"} <= set(done.leaderboard[0])
    best = sw2.load_spec(out / "best.yaml")[0]
    assert best.tune is None and best.model.widths in ([16], [32, 32], [64, 64])
    assert done.bundle.metrics["test"]["accuracy"] >= 0.85
    confirmed = {c.trial: c for c in done.confirmed}  # the 3 best by val and the spec's own point, 2 folds each
    assert 0 in confirmed and 3 <= len(confirmed) <= 4 and all(len(c.folds) == 2 for c in confirmed.values())
    assert done.trial == max(confirmed.values(), key=lambda c: (c.mean, c.val)).trial
    assert {r["trial"]: r["cv"] for r in done.leaderboard if r.get("cv") is not None} == {
        t: c.mean for t, c in confirmed.items()
    }
    report = (done.bundle.path / "report.html").read_text()
    assert "Hyper-parameter search" in report and "optimisation history" in report

    data = TASKS.get("classify").prepare(sw2.load_spec(out / "best.yaml")[0], ROOT)
    (test_x,) = data.test.inputs.values()  # wine: one tensor of numbers
    test_rows = {tuple(r.tolist()) for r in test_x}
    searched_rows = {tuple(r.tolist()) for t in seen for r in t.reshape(len(t), -1)}
    assert seen and not (test_rows & searched_rows), "a trial read test rows"


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    cases = [
        ({**WINE, "tune": {}}, [], "search space is empty"),
        ({**WINE, "tune": {"train.lrr": {"log": [1e-4, 0.1]}}}, [], "did you mean 'train.lr'"),
        ({**WINE, "tune": {"train.lr": {"log": [0.1, 1e-4]}}}, [], "low < high"),
        ({**WINE, "tune": {"train.dropout": {"range": [0, 2]}}}, [], "train.dropout"),
        ({**WINE, "tune": {"data.split.seed": {"int": [0, 3]}}}, [], "not tunable"),
        (WINE, ["--time", "0"], "--time"),
        (WINE, ["--time", "soon"], "not a duration"),
        (WINE, ["--trials", "0"], "--trials"),
        (WINE, ["--confirm", "-1"], "--confirm"),
        (WINE, ["--resume"], "holds no search to continue"),
        (WINE, ["--storage", "nowhere"], "not a database URL"),
        ({**WINE, "data": {**WINE["data"], "split": {"val": 0.0, "test": 0.2}}}, [], "data.split.val"),
    ]
    for i, (spec, flags, needle) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = write_spec(folder, spec)
        res = sw2_here("tune", str(path), "--out", str(folder / "out"), "--quiet", *flags, cwd=folder)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], (needle, res.stderr)


def test_an_existing_search_is_continued_only_with_resume(tmp_path: Path) -> None:
    sw2.tune(WINE, tmp_path / "out", trials=2)
    path = write_spec(tmp_path, WINE)
    res = sw2_here("tune", str(path), "--out", str(tmp_path / "out"), "--quiet", "--trials", "3", cwd=tmp_path)
    assert res.returncode == 2 and "--resume" in res.stderr
    other = {**WINE, "train": {**WINE["train"], "batch_size": 16}}
    path = write_spec(tmp_path, other)
    res = sw2_here("tune", str(path), "--out", str(tmp_path / "out"), "--resume", "--trials", "3", cwd=tmp_path)
    assert res.returncode == 2 and "another spec" in res.stderr


def _cut(spec: Path, out: Path, *flags: str, sig: str, after: int) -> subprocess.CompletedProcess[str]:
    """`sw2 tune` in a process of its own that sends itself SIG`sig` as a trial begins once `after` trials
    have finished (tests/plugins/tune_interrupt.py): cut at the same trial on any machine. Ctrl-C's default
    action is restored first (a suite started in the background would pass on SIGINT ignored, and Python would
    then raise no KeyboardInterrupt)."""
    env = {**os.environ, "SW2_PLUGINS": "tune_interrupt", "PYTHONPATH": f"{PLUGINS}:{ROOT}",
           "SW2_TUNE_SIGNAL": sig, "SW2_TUNE_AFTER": str(after)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "sw2.cli", "tune", str(spec), "--out", str(out), "--quiet", *flags],
        capture_output=True, text=True, cwd=spec.parent, env=env, timeout=600,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def test_interrupted_search_resumes_without_repeating_finished_trials(tmp_path: Path) -> None:
    """Ctrl-C, then --resume, then SIGKILL, then --resume: every finished trial is kept as it was, and each
    trial cut short runs again with its point."""
    spec = write_spec(tmp_path, WINE)
    out = tmp_path / "out"
    flags = ["--trials", "4", "--pruner", "none"]
    res = _cut(spec, out, *flags, sig="INT", after=1)  # Ctrl-C as trial 1 begins
    assert res.returncode == 130 and "--resume" in res.stderr, res.stderr
    first = {t.number: (t.params, t.value) for t in finished(study_of(out))}
    assert list(first) == [0], first

    res = _cut(spec, out, *flags, "--resume", sig="KILL", after=2)  # trial 1 again (as 2), then killed in 3
    assert res.returncode == -signal.SIGKILL, res.stderr
    second = {t.number: (t.params, t.value) for t in finished(study_of(out))}
    assert list(second) == [0, 2] and all(second[n] == first[n] for n in first), second

    res = subprocess.run(
        [sys.executable, "-m", "sw2.cli", "tune", str(spec), "--out", str(out), "--quiet", *flags, "--resume"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    study = study_of(out)
    after = {t.number: (t.params, t.value) for t in finished(study)}
    assert len(after) == 4 and all(after[n] == second[n] for n in second), "a finished trial changed or repeated"
    cut = [t for t in study.trials if t.number in study.user_attrs["retried"]]
    assert len(cut) == 2 and all(t.state == optuna.trial.TrialState.FAIL for t in cut)
    for t in cut:
        assert any(n > t.number and a[0] == t.params for n, a in after.items()), f"trial {t.number} was not rerun"
    assert (out / "best" / "model.safetensors").is_file()


# ---- PostgreSQL: a real server, started and stopped here -------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> str:
    """A PostgreSQL server on 127.0.0.1 in a fresh cluster (Debian's postgresql package), run as the postgres
    user where the tests run as root (initdb refuses root); its URL with a database `sw2`."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg2")
    bin_dir = Path(found[-1]).parent
    home = Path(tempfile.mkdtemp(prefix="sw2-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = home / "data", _free_port()

    def pg(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(home / "log"),
       "-o", f"-p {port} -k {home} -c listen_addresses=127.0.0.1", "start")  # fmt: skip
    try:
        pg(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "sw2")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/sw2"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_study_in_postgresql(tmp_path: Path, postgres: str) -> None:
    """The CLI's process and one spawned worker both run trials of the study. Which process takes which trial
    is a race; tests/plugins/tune_rendezvous.py holds each process's first trial until the other process has
    started one, so that both take part on any machine (a fast first worker could otherwise run them all)."""
    spec = write_spec(tmp_path, WINE)
    env = {**os.environ, "SW2_PLUGINS": "tune_rendezvous", "PYTHONPATH": f"{PLUGINS}:{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sw2.cli", "tune", str(spec), "--out", str(tmp_path / "out"), "--quiet",
         "--trials", "10", "--workers", "2", "--storage", postgres, "--pruner", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    study = optuna.load_study(study_name="wine", storage=postgres)
    done = finished(study)
    assert len(done) >= 10
    assert all(t.user_attrs["worker"] == t.user_attrs["started_by"] for t in done), "a trial is one process's"
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2 and proc.pid in workers, f"trials ran in {workers}, the CLI being {proc.pid}"
    assert not (tmp_path / "out" / "study.journal").exists()
    assert (tmp_path / "out" / "best" / "model.safetensors").is_file()
    assert yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())["name"] == "wine"
