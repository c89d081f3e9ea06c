"""The CLI as a user runs it: train, eval on other data, predict images and CSV rows, resume after SIGKILL."""

from __future__ import annotations

import csv
import gzip
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.conftest import make_image_folder, need_dataset, sw2, sw2_here, table_cells, write_spec


def test_train_eval_predict_images(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=30)
    make_image_folder(tmp_path / "other", per_class=8, seed=5)
    write_spec(
        tmp_path,
        {
            "name": "stripes",
            "data": {"path": "imgs", "cache_dir": str(tmp_path / "c")},
            "train": {"epochs": 10, "batch_size": 16, "lr": 0.01},
        },
    )
    res = sw2("train", "spec.yaml", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "runs" / "stripes" / "model.safetensors").exists()
    assert "accuracy" in res.stdout and "majority class" in res.stdout

    res = sw2_here("eval", "runs/stripes", "--data", "other", "--json", "m.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "evaluation (16 examples)" in res.stdout and "confusion matrix" in res.stdout
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["n"] == 16 and got["accuracy"] >= 15 / 16 and got["baseline"]["accuracy"] == 0.5, got
    assert sum(map(sum, got["confusion"])) == 16 and got["dropped_unseen_labels"] == 0
    for metric in ("accuracy", "macro_f1", "log_loss"):  # the file holds what the table shows
        assert table_cells(res.stdout, metric) == [f"{got[metric]:.4f}", f"{got['baseline'][metric]:.4f}"], metric

    res = sw2_here("eval", "runs/stripes", "--json", "saved.json", cwd=tmp_path)  # no --data: the saved test metrics
    saved = json.loads((tmp_path / "runs" / "stripes" / "metrics.json").read_text())["test"]
    assert res.returncode == 0 and json.loads((tmp_path / "saved.json").read_text()) == saved
    assert saved["n"] == 12 and saved["accuracy"] >= 11 / 12 and abs(saved["accuracy"] - got["accuracy"]) <= 0.1

    (tmp_path / "flat").mkdir()  # images without classes cannot be scored: refused, naming the layout
    Image.open(tmp_path / "other" / "v" / "000.png").save(tmp_path / "flat" / "0.png")
    res = sw2_here("eval", "runs/stripes", "--data", "flat", cwd=tmp_path)
    assert res.returncode == 2 and "<folder>/<class>/<image>" in res.stderr, res.stderr

    res = sw2_here("predict", "runs/stripes", "other/v/000.png", "--top", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("other/v/000.png: v ") and " h " in res.stdout

    res = sw2_here("predict", "runs/stripes", "other", "--output", "p.csv", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    truth = [Path(r["id"]).parent.name for r in rows]  # other/<class>/<image>
    assert len(rows) == 16 and sorted(truth) == ["h"] * 8 + ["v"] * 8, rows
    right = sum(r["prediction"] == t for r, t in zip(rows, truth))
    assert right / 16 == got["accuracy"], "predict and eval agree"
    assert all(0.5 <= float(r["probability"]) <= 1 and r["top2"] != r["prediction"] for r in rows)


def test_predict_csv_rows(tmp_path):
    write_spec(
        tmp_path, {"data": {"source": "package", "name": "iris"}, "model": {"name": "mlp"}, "train": {"epochs": 30}}
    )
    assert sw2("train", "spec.yaml", "--quiet", "--out", "b", cwd=tmp_path).returncode == 0
    cols = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    pd.DataFrame([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], columns=cols).to_csv(tmp_path / "rows.csv", index=False)
    res = sw2_here("predict", "b", "rows.csv", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["prediction"] for r in rows] == ["setosa", "virginica"]
    assert float(rows[0]["probability"]) > 0.5


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))


def test_idx_source_and_png_prediction(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(d.images * 16, 0, 255).astype(np.uint8)
    folder = tmp_path / "mnistlike"
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte.gz", images[:1500])
    _write_idx(folder / "train-labels-idx1-ubyte.gz", d.target[:1500])
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images[1500:])
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", d.target[1500:])
    write_spec(tmp_path, {"data": {"path": "mnistlike"}, "train": {"epochs": 15, "batch_size": 64, "lr": 0.003}})
    res = sw2("train", "spec.yaml", "--quiet", "--out", "b", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "(297 examples)" in res.stdout  # the given t10k split is the test split
    Image.fromarray(images[1600]).save(tmp_path / "digit.png")
    res = sw2_here("predict", "b", "digit.png", cwd=tmp_path)
    assert res.returncode == 0 and f": {d.target[1600]} " in res.stdout


def test_mnist_subset_from_shared_data(tmp_path):
    mnist = need_dataset("mnist")
    write_spec(
        tmp_path,
        {
            "data": {"path": str(mnist), "limit": 12000},
            "model": {"name": "convnet", "widths": [16, 32, 64], "activation": "relu"},
            "train": {"epochs": 1, "optimizer": "nesterov", "lr": 0.2, "label_smoothing": 0.1},
        },
    )
    res = sw2("train", "spec.yaml", "--quiet", "--out", "b", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    import json

    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["test"]["accuracy"] >= 0.96


# `sw2 train ARGS...` in a process that SIGKILLs itself as the checkpoint of epoch KILL_AT + 1 is about to be
# written: it has trained past its last checkpoint (epoch KILL_AT's), as a run killed at a random moment would
# have, at the same point every time (a parent polling the checkpoint and racing to kill lands anywhere).
KILLED_TRAIN = """
import os, signal, sys
from sw2.cli import main
from sw2.engine import checkpoint

save, kill_at = checkpoint.save, int(sys.argv[1])

def save_or_die(folder, state):
    if state["state"]["epoch"] == kill_at + 1:
        os.kill(os.getpid(), signal.SIGKILL)
    save(folder, state)

checkpoint.save = save_or_die
sys.exit(main(sys.argv[2:]))
"""
KILL_AT = 3


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    spec = {
        "data": {"source": "package", "name": "digits"},
        "model": {"widths": [48, 96]},
        # the slow weights and the pruning scores must survive too
        # deterministic: threads pinned (a count chosen by timing may differ between the runs, and so may float
        # rounding), deterministic algorithms (on a GPU runner too)
        "train": {"epochs": 8, "batch_size": 32, "lookahead": True, "prune_easy": 0.3, "deterministic": True},
        "augment": {"translate": 1},
    }
    write_spec(tmp_path, spec)
    quiet = sw2_here("train", "spec.yaml", "--quiet", "--no-check", "--out", "full", cwd=tmp_path)  # in-process
    assert quiet.returncode == 0 and "bundle written" not in quiet.stdout and "sw2:" not in quiet.stdout

    (tmp_path / "killed_train.py").write_text(KILLED_TRAIN)
    args = ["train", "spec.yaml", "--quiet", "--no-check", "--out", "cut"]
    cmd = [sys.executable, "killed_train.py", str(KILL_AT), *args]
    killed = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "cut").exists(), "killed run must not leave a bundle"
    ckpt = tmp_path / "cut.checkpoint" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)["state"]
    assert state["epoch"] == KILL_AT and len(state["history"]) == KILL_AT, "the last checkpoint written is kept"

    res = sw2_here("train", "spec.yaml", "--quiet", "--no-check", "--out", "cut", "--resume", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    a, b = (
        load_file(str(tmp_path / "full" / "model.safetensors")),
        load_file(str(tmp_path / "cut" / "model.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    done = [json.loads((tmp_path / d / "metrics.json").read_text())["training"]["epochs_done"] for d in ("full", "cut")]
    assert done[0] == done[1]
    assert not ckpt.parent.exists(), "checkpoint folder is removed once the bundle is written"
