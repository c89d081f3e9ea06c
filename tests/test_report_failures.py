"""Failures at the end of training: a failing report writer costs only report.html (the model is kept, with a
warning), and a failure while the bundle is being written leaves an older bundle byte-for-byte as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

import sw2
import sw2.api
import sw2.bundle
import sw2.finish
from sw2.evaluation import plots

SPEC = {"name": "iris", "data": {"source": "package", "name": "iris"}, "model": {"name": "mlp"},
        "train": {"epochs": 30, "lr": 0.01}}  # fmt: skip
CORE = {"model.safetensors", "model.json", "preprocess.json", "spec.yaml", "metrics.json", "history.jsonl"}


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(folder: Path) -> list[str]:
    """Temporary or displaced bundle folders (`.b.tmp123`, `.b.old123`) in `folder`."""
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or ".old" in p.name)


def iris_accuracy(bundle: sw2.Bundle) -> float:
    """Accuracy of the bundle's predictions on all 150 iris rows against their true species."""
    iris = load_iris(as_frame=True)
    predicted = bundle.predict(iris.data)
    truth = [iris.target_names[i] for i in iris.target]
    return sum(p == t for p, t in zip(predicted, truth)) / len(truth)


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A real bundle, trained once, that the failing runs below are pointed at."""
    folder = tmp_path_factory.mktemp("earlier")
    sw2.train(SPEC, folder / "b", verbose=False, check=False)
    return folder / "b"


def test_a_failing_report_keeps_the_model_with_a_warning(tmp_path, monkeypatch, capsys, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the plotting backend exploded")

    monkeypatch.setattr(sw2.finish, "write_report", broken)
    bundle = sw2.train(SPEC, tmp_path / "b", verbose=True, check=False)
    out = capsys.readouterr().out
    assert "warning: report.html not written (RuntimeError: the plotting backend exploded)" in out, out
    assert "sw2 report BUNDLE" in out  # says how to retry
    sw2.train(SPEC, tmp_path / "b", check=False)  # quiet from Python: still a warning on the "sw2" logger
    assert capsys.readouterr().out == ""
    assert any("report.html not written" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    names = {p.name for p in bundle.path.iterdir()}
    assert CORE | {"curves.png", "confusion.png"} <= names and "report.html" not in names, names
    again = sw2.load(tmp_path / "b")
    assert iris_accuracy(again) >= 0.9
    assert again.metrics["test"]["accuracy"] == bundle.metrics["test"]["accuracy"] >= 0.85
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failure_mid_write_leaves_the_older_bundle_untouched(tmp_path, earlier, monkeypatch, error):
    out = tmp_path / "b"
    shutil.copytree(earlier, out)
    before = hashes(out)
    assert CORE | {"report.html"} <= set(before)
    written: list[str] = []

    def failing_confusion(matrix, classes, path: Path) -> None:
        """Called once save() has written the weights and the JSON files: half a PNG, then the failure."""
        written.extend(sorted(p.name for p in path.parent.iterdir()))
        path.write_bytes(b"\x89PNG\r\n")
        raise error

    monkeypatch.setattr(plots, "confusion", failing_confusion)
    with pytest.raises(type(error)):
        sw2.train({**SPEC, "train": {**SPEC["train"], "seed": 7}}, out, verbose=False, check=False)
    assert CORE <= set(written), "the failure came after the new bundle's files were written"
    assert hashes(out) == before
    assert leftovers(tmp_path) == [], "the temporary folder is removed"
    assert iris_accuracy(sw2.load(out)) >= 0.9


def test_a_failure_while_renaming_puts_the_older_bundle_back(tmp_path, earlier, monkeypatch):
    """The last step swaps two folders with two renames; if the second fails, the first is undone."""
    out = tmp_path / "b"
    shutil.copytree(earlier, out)
    before = hashes(out)
    real = os.replace

    def failing_replace(src, dst):
        if ".tmp" in Path(src).name and Path(dst) == out.resolve():
            raise OSError("Input/output error")
        return real(src, dst)

    monkeypatch.setattr(sw2.bundle.os, "replace", failing_replace)
    with pytest.raises(OSError, match="Input/output error"):
        sw2.train({**SPEC, "train": {**SPEC["train"], "seed": 7}}, out, verbose=False, check=False)
    assert hashes(out) == before
    assert leftovers(tmp_path) == []
