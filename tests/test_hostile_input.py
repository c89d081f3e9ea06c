"""Careless and hostile input (issue 15): each case gets one `error:` line naming the file or field and what to
do, exit 2, no traceback, and nothing outside the new bundle changes (every file listed before and after)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pickle
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sw2 as sw2_api
from sw2.bundle import REQUIRED
from tests.conftest import sw2, sw2_here, write_spec


def snapshot(folder: Path) -> dict[str, tuple[int, int] | str]:
    """Everything under `folder`: a file's (size, mtime_ns), a folder's mere presence."""
    return {
        str(p.relative_to(folder)): "folder" if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def error_line(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The run failed as bad input must: exit 2, one `error:` line holding every needle, no traceback."""
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def refused(folder: Path, *args: str, needles: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """`sw2 ARGS` run in `folder` is refused with one line holding `needles`, and changes nothing there."""
    before = snapshot(folder)
    res = sw2_here(*args, cwd=folder)
    error_line(res, *needles)
    assert snapshot(folder) == before
    return res


def table(path: Path, rows: int = 80, classes: int = 2, seed: int = 0) -> Path:
    """A small table: two numeric columns a, b and a target y that a's sign (and b) decide."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x[:, 0] > 0).astype(int) if classes == 2 else np.arange(rows) % classes
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_csv(path, index=False)
    return path


def spec_for(folder: Path, data: str | dict = "d.csv", **extra) -> Path:
    """spec.yaml in `folder`: the table `data` (a path, or the whole data: section), target y, one epoch."""
    section = data if isinstance(data, dict) else {"path": data}
    spec = {"data": section, "target": "y", "model": {"name": "mlp"}, "train": {"epochs": 1}}  # one model: fast
    return write_spec(folder, {**spec, **extra})


def fake_bundle(folder: Path) -> Path:
    """A folder that looks like an older bundle (the files sw2 recognises one by)."""
    folder.mkdir()
    for name in REQUIRED:
        (folder / name).write_text("older bundle")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small table bundle, trained once; tests copy it before changing it."""
    folder = tmp_path_factory.mktemp("trained")
    table(folder / "d.csv")
    spec = {"data": {"path": "d.csv"}, "target": "y", "train": {"epochs": 3}}
    sw2_api.train(spec, folder / "b", verbose=False, check=False, root=folder)
    return folder


@pytest.fixture
def project(tmp_path: Path, trained: Path) -> Path:
    """tmp_path holding d.csv, spec.yaml and a copy of the trained bundle `b`."""
    shutil.copy(trained / "d.csv", tmp_path / "d.csv")
    shutil.copytree(trained / "b", tmp_path / "b")
    spec_for(tmp_path)
    return tmp_path


# ---- --out never destroys user files -------------------------------------------------------------------


def test_out_folder_with_user_files_is_refused(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    (tmp_path / "userdir").mkdir()
    (tmp_path / "userdir" / "notes.txt").write_text("mine")
    refused(tmp_path, "train", "spec.yaml", "--out", "userdir", "--quiet", needles=("userdir", "notes.txt", "--out"))


def test_language_model_out_folder_with_user_files_is_refused(tmp_path):
    (tmp_path / "t.txt").write_text("to be or not to be\n" * 200)
    write_spec(tmp_path, {"task": "generate_text", "data": {"path": "t.txt"}, "text": {"tokenizer": "char"}})
    (tmp_path / "userdir").mkdir()
    (tmp_path / "userdir" / "notes.txt").write_text("mine")
    refused(tmp_path, "train", "spec.yaml", "--out", "userdir", "--quiet", needles=("userdir", "notes.txt"))


def test_out_is_the_working_directory(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    refused(
        tmp_path, "train", "spec.yaml", "--out", str(tmp_path), "--quiet", needles=(str(tmp_path), "working folder")
    )


def test_out_dot(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    refused(tmp_path, "train", "spec.yaml", "--out", ".", "--quiet", needles=(".: is the working folder",))


def test_out_is_the_training_csv(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    refused(tmp_path, "train", "spec.yaml", "--out", "d.csv", "--quiet", needles=("d.csv: is a file",))


def test_out_is_the_spec_folder(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    table(project / "d.csv")
    spec_for(project)
    refused(tmp_path, "train", "project/spec.yaml", "--out", "project", "--quiet", needles=("project", "d.csv"))


def test_out_bundle_holding_the_spec_is_refused(tmp_path):
    old = fake_bundle(tmp_path / "old")
    table(tmp_path / "d.csv")
    spec_for(old, "../d.csv")  # the bundle's spec.yaml is the user's spec
    args = ("train", "old/spec.yaml", "--out", "old", "--quiet")
    refused(tmp_path, *args, needles=("old", "holds the spec's folder", "this run reads"))


def test_out_bundle_holding_the_data_is_refused(tmp_path):
    old = fake_bundle(tmp_path / "old")
    (old / "tensorboard").mkdir()  # a folder sw2 writes in a bundle, here holding the user's data
    table(old / "tensorboard" / "d.csv")
    spec_for(tmp_path, "old/tensorboard/d.csv")
    refused(tmp_path, "train", "spec.yaml", "--out", "old", "--quiet", needles=("old", "data.path", "this run reads"))


def test_out_bundle_whose_record_claims_a_users_file_is_refused(tmp_path):
    """files.json lists what sw2 wrote with each file's size and sha256: a crafted record naming a file the user
    put there later (or the same name with other bytes) does not make it sw2's."""
    old = fake_bundle(tmp_path / "old")
    (old / "thesis.docx").write_text("a user's work")
    (old / "files.json").write_text(json.dumps({"wrote": {"thesis.docx": [13, "0" * 64], "notes.txt": [0, ""]}}))
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    refused(tmp_path, "train", "spec.yaml", "--out", "old", "--quiet", needles=("old", "thesis.docx"))


def test_out_checkpoint_folder_with_user_files_is_refused(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    (tmp_path / "b.checkpoint").mkdir()
    (tmp_path / "b.checkpoint" / "notes.txt").write_text("mine")
    refused(tmp_path, "train", "spec.yaml", "--out", "b", "--quiet", needles=("b.checkpoint", "notes.txt"))


def test_doctor_out_folder_with_user_files_is_refused(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path)
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "notes.txt").write_text("mine")
    refused(tmp_path, "doctor", "spec.yaml", "--out", "findings", needles=("findings", "not sw2 doctor findings"))


def test_out_older_bundle_is_replaced(project):
    """The rule's other side: an older bundle at --out is replaced by the new one, and nothing else changes."""
    (project / "b" / "model.safetensors").write_bytes(b"older")
    before = {k: v for k, v in snapshot(project).items() if not k.startswith("b")}
    res = sw2("train", "spec.yaml", "--out", "b", "--quiet", "--no-check", cwd=project)
    assert res.returncode == 0, res.stderr
    assert sw2_api.load(project / "b").spec.data.path == "d.csv"
    assert {k: v for k, v in snapshot(project).items() if not k.startswith("b")} == before


# ---- the spec ------------------------------------------------------------------------------------------


def test_spec_latin1(tmp_path):
    table(tmp_path / "d.csv")
    (tmp_path / "spec.yaml").write_bytes("name: caf\xe9\ndata: {path: d.csv}\ntarget: y\n".encode("latin-1"))
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("spec.yaml", "not UTF-8", "save the file as UTF-8"))


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("train: {epochs: 1}\ntrain: {lr: 2}\n", ("duplicate key 'train'", "line 4", "first at line 3")),
        ("train:\n  lr: 0.1\n  lr: 0.2\n", ("duplicate key 'lr'", "line 5", "first at line 4")),
        ("train: {epochs: 1, epochs: 5}\n", ("duplicate key 'epochs'", "line 3", "first at line 3")),
    ],
)
def test_duplicate_yaml_key(tmp_path, text, needles):
    table(tmp_path / "d.csv")
    (tmp_path / "spec.yaml").write_text("data: {path: d.csv}\ntarget: y\n" + text)
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("spec.yaml", *needles, "keep one of them"))


def test_split_fractions_sum_over_one(tmp_path):
    table(tmp_path / "d.csv")
    spec_for(tmp_path, data={"path": "d.csv", "split": {"val": 0.6, "test": 0.6}})
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("spec.yaml", "data.split", "sum must be below 1"))


def test_split_leaves_too_few_training_rows(tmp_path):
    table(tmp_path / "d.csv", rows=40, classes=4)  # 10 rows a class: 5 test, 4 val, 1 train
    write_spec(tmp_path, {"data": {"path": "d.csv", "split": {"val": 0.49, "test": 0.49}}, "target": "y"})
    needles = ("data.split", "leave 4 of 40 rows", "lower data.split.val / data.split.test")
    refused(tmp_path, "train", "spec.yaml", "--quiet", "--no-check", needles=needles)


# ---- data files ----------------------------------------------------------------------------------------


def test_target_all_empty(tmp_path):
    pd.DataFrame({"a": range(40), "b": range(40), "y": [None] * 40}).to_csv(tmp_path / "d.csv", index=False)
    spec_for(tmp_path)
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("d.csv", "target column 'y' is empty in every row"))


def idx_folder(folder: Path, images: str, content: bytes) -> None:
    """An MNIST-like folder whose train images file (`images`, with or without .gz) holds `content`; the
    labels file is sound."""
    folder.mkdir()
    (folder / images).write_bytes(content)
    labels = bytes([0, 0, 8, 1]) + (20).to_bytes(4, "big") + bytes(range(2)) * 10
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    write_spec(folder.parent, {"data": {"path": folder.name}, "train": {"epochs": 1}})


def test_truncated_idx_gz(tmp_path):
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (20, 8, 8))
    whole = gzip.compress(header + np.random.default_rng(0).integers(0, 256, 20 * 64, np.uint8).tobytes())
    idx_folder(tmp_path / "mnist", "train-images-idx3-ubyte.gz", whole[: len(whole) // 2])
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("train-images-idx3-ubyte.gz", "download"))


def test_six_byte_idx(tmp_path):
    idx_folder(tmp_path / "mnist", "train-images-idx3-ubyte", bytes([0, 0, 8, 3, 0, 0]))
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("train-images-idx3-ubyte", "truncated"))


def test_inf_in_numeric_column_is_imputed(tmp_path):
    path = table(tmp_path / "d.csv")
    frame = pd.read_csv(path)
    frame.loc[[3, 10, 20], "a"] = [np.inf, -np.inf, np.inf]
    frame.to_csv(path, index=False)
    spec_for(tmp_path)
    before = snapshot(tmp_path)
    res = sw2("train", "spec.yaml", "--out", "b", "--quiet", "--no-check", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("b")} == before
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["data"]["nonfinite_values"] == {"a": 3}
    assert (tmp_path / "b" / "report.html").stat().st_size > 0
    probs = sw2_api.load(tmp_path / "b").predict_proba(frame.drop(columns="y"))
    assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_inf_in_numeric_column_is_refused(tmp_path):
    path = table(tmp_path / "d.csv")
    frame = pd.read_csv(path)
    frame.loc[10, "b"] = -np.inf
    frame.to_csv(path, index=False)
    spec_for(tmp_path, data={"path": "d.csv", "nonfinite": "refuse"})
    refused(tmp_path, "train", "spec.yaml", "--quiet", needles=("d.csv", "column 'b'", "-inf", "row 11", "nonfinite"))


# ---- damaged bundles ---------------------------------------------------------------------------------


class Payload:
    """Unpickling this runs a shell command: sw2 must never do it."""

    def __reduce__(self):
        return (os.system, ("touch MARKER",))


def damaged_weights_refused(project: Path, content: bytes) -> None:
    (project / "b" / "model.safetensors").write_bytes(content)
    refused(project, "predict", "b", "d.csv", needles=("model.safetensors", "damaged", "train it again"))
    assert not (project / "MARKER").exists()


def test_bundle_weights_random_bytes(project):
    damaged_weights_refused(project, os.urandom(4096))


def test_bundle_weights_pickle(project):
    damaged_weights_refused(project, pickle.dumps(Payload()))


def test_bundle_model_json_mismatch(project):
    arch = json.loads((project / "b" / "model.json").read_text())
    arch["kwargs"]["n_out"] += 2  # every table model has it (auto may have picked the mlp, gbm or linear)
    (project / "b" / "model.json").write_text(json.dumps(arch))
    refused(project, "eval", "b", needles=("b: model.json does not match", "model.safetensors", "train it again"))


def test_bundle_model_json_asking_for_far_more_memory_than_its_weights(project):
    """A crafted model.json (an output layer of 10^9 units: gigabytes) is sized on the meta device against the
    weights file's header and refused before anything is allocated."""
    arch = json.loads((project / "b" / "model.json").read_text())
    arch["kwargs"]["n_out"] = 10**9
    (project / "b" / "model.json").write_text(json.dumps(arch))
    refused(project, "eval", "b", needles=("model.json", "model.safetensors", "train it again"))


def test_bundle_model_json_not_json(project):
    (project / "b" / "model.json").write_text("{not json")
    refused(project, "eval", "b", needles=("model.json", "not valid JSON"))


def test_resume_checkpoint_is_a_pickle(project):
    (project / "b.checkpoint").mkdir()
    (project / "b.checkpoint" / "checkpoint.pt").write_bytes(pickle.dumps(Payload()))
    args = ("train", "spec.yaml", "--out", "b", "--resume", "--quiet", "--no-check")
    refused(project, *args, needles=("checkpoint.pt", "delete the folder", "without --resume"))
    assert not (project / "MARKER").exists()


def test_resume_checkpoint_is_garbage(project):
    (project / "b.checkpoint").mkdir()
    (project / "b.checkpoint" / "checkpoint.pt").write_bytes(os.urandom(1000))
    args = ("train", "spec.yaml", "--out", "b", "--resume", "--quiet", "--no-check")
    refused(project, *args, needles=("checkpoint.pt", "not a readable sw2 checkpoint", "without --resume"))
    threads = threading.active_count()
    verbose = ("train", "spec.yaml", "--out", "b", "--resume", "--no-check")  # the progress bar never starts
    refused(project, *verbose, needles=("checkpoint.pt", "not a readable sw2 checkpoint"))
    assert threading.active_count() == threads


# ---- command-line outputs ------------------------------------------------------------------------------


def test_eval_json_is_a_directory(project):
    (project / "out").mkdir()
    res = refused(project, "eval", "b", "--json", "out", needles=("--json out", "is a folder"))
    assert res.stdout == "", "the argument is checked before any work"


def test_eval_json_inside_the_bundle(project):
    refused(project, "eval", "b", "--json", "b/metrics.json", needles=("--json b/metrics.json", "inside the bundle"))


def test_predict_output_dir_missing(project):
    refused(
        project,
        "predict",
        "b",
        "d.csv",
        "--output",
        "no/such/dir/x.csv",
        needles=("--output no/such/dir/x.csv", "no/such/dir does not exist"),
    )


def test_predict_output_is_the_input(project):
    refused(project, "predict", "b", "d.csv", "--output", "d.csv", needles=("--output d.csv", "is an input"))


def test_predict_rows_with_inf(project):
    rows = pd.DataFrame({"a": [np.inf, -np.inf, np.nan, 0.5], "b": [0.1, np.nan, np.inf, -np.inf]})
    rows.to_csv(project / "rows.csv", index=False)
    res = sw2("predict", "b", "rows.csv", "--output", "p.csv", cwd=project)
    assert res.returncode == 0, res.stderr
    got = list(csv.DictReader(io.StringIO((project / "p.csv").read_text())))
    assert len(got) == 4 and all(np.isfinite(float(r["probability"])) for r in got)
    # an infinite value is a missing one, imputed as in training
    bundle = sw2_api.load(project / "b")
    missing = rows.replace([np.inf, -np.inf], np.nan)
    np.testing.assert_allclose(bundle.predict_proba(rows), bundle.predict_proba(missing))
    assert [float(r["probability"]) for r in got] == pytest.approx(bundle.predict_proba(missing).max(1), abs=1e-4)
