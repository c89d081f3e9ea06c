"""sw2 compress: int8 (static for a conv net, dynamic for a text model), structured pruning with fine-tuning,
the table, model tests on every variant, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_wine

pytest.importorskip("onnxruntime")

import sw2  # noqa: E402
from sw2.bundle import Bundle  # noqa: E402
from tests.conftest import sw2_here as run_sw2  # noqa: E402
from tests.conftest import write_spec  # noqa: E402

DIGITS = {
    "name": "digits-small",
    "data": {"source": "package", "name": "digits", "split": {"val": 0.15, "test": 0.2, "seed": 0}},
    "task": "classify",
    "model": {"name": "convnet", "widths": [32, 64]},
    "train": {"epochs": 20, "batch_size": 64, "optimizer": "adamw", "lr": 0.003, "label_smoothing": 0.1},
    "tests": [{"kind": "metric", "metric": "accuracy", "min": 0.8}],
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return sw2.train(DIGITS, tmp_path_factory.mktemp("runs") / "digits", check=False)


@pytest.fixture(scope="module")
def both(digits: Bundle, tmp_path_factory: pytest.TempPathFactory):
    """int8 and 50% pruned variants of the digits conv net, in one run."""
    out = tmp_path_factory.mktemp("compressed") / "digits-compressed"
    return sw2.compress(digits, "int8", 0.5, out, calls=5)


def rows(done) -> dict[str, dict]:
    return {r["variant"]: r for r in done.rows}


def test_int8_conv_net_keeps_accuracy_and_is_smaller(both) -> None:
    r = rows(both)
    assert set(r) == {"eager fp32", "onnx fp32", "onnx int8", "pruned eager fp32", "pruned onnx fp32",
                      "pruned onnx int8"}  # fmt: skip
    assert r["onnx int8"]["value"] >= r["eager fp32"]["value"] - 0.02
    assert r["onnx fp32"]["size_bytes"] >= 2 * r["onnx int8"]["size_bytes"]
    record = json.loads((both.out / "int8" / "compress.json").read_text())
    assert record["method"] == "static" and record["passed"] and record["tests"][0]["passed"]
    int8 = Bundle(both.out / "int8", backend="onnx")  # a normal bundle: it loads and predicts
    images = digit_images()
    assert (int8.predict(images) == load_digits().target[: len(images)]).mean() > 0.8
    for key in ("p50_ms", "p95_ms", "throughput", "size_bytes"):
        assert all(row[key] > 0 for row in both.rows)
    table = json.loads((both.out / "compress.json").read_text())
    assert [x["variant"] for x in table["rows"]] == [x["variant"] for x in both.rows]
    assert (both.out / "compress.md").read_text().startswith("| variant |")


def test_pruned_conv_net_is_physically_smaller_and_loads(digits: Bundle, both) -> None:
    pruned = Bundle(both.out / "pruned")  # the torch backend: rebuilt from model.json
    arch = json.loads((both.out / "pruned" / "model.json").read_text())
    assert arch["kwargs"]["widths"] == [16, 32]
    n = sum(p.numel() for p in pruned.model.parameters())
    assert n < 0.4 * sum(p.numel() for p in digits.model.parameters())
    images = digit_images()
    assert pruned.predict(images).shape == (len(images),)
    assert (Bundle(both.out / "pruned", backend="onnx").predict(images) == pruned.predict(images)).mean() > 0.9
    r = rows(both)
    assert r["pruned eager fp32"]["value"] > 0.8  # fine-tuned: pruning alone leaves it far lower
    record = json.loads((both.out / "pruned" / "compress.json").read_text())
    assert record["prune"] == 0.5 and record["fine_tune"] == 0.25 and record["passed"]
    signed = (digits.path / "provenance.json").read_text()  # its data record: sw2 report/test need no --spec
    assert all((both.out / v / "provenance.json").read_text() == signed for v in ("int8", "pruned", "pruned-int8"))


def digit_images() -> np.ndarray:
    """Images as the digits source gives them (0..16 times 16)."""
    return np.clip(load_digits().images[:40] * 16, 0, 255).astype("uint8")


def test_failing_variant_is_not_written_without_force(digits: Bundle, tmp_path: Path) -> None:
    strict = {**DIGITS, "tests": [{"kind": "metric", "metric": "accuracy", "min": 0.9999}]}
    spec = write_spec(tmp_path, strict)
    out = tmp_path / "out"
    args = ["compress", str(digits.path), "--quantize", "int8", "--out", str(out), "--spec", str(spec), "--calls", "5"]
    done = run_sw2(*args)
    assert done.returncode == 1, done.stderr
    assert "int8: failed its model tests" in done.stdout and "not written" in done.stdout
    assert not (out / "int8").exists()
    assert json.loads((out / "compress.json").read_text())["refused"] == ["int8"]
    forced = run_sw2(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "int8" / "compress.json").read_text())["forced"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--quantize", "int4"], "invalid choice: 'int4'"),
        (["--prune", "1.5"], "--prune: 1.5 is not a share"),
        (["--prune", "0"], "--prune: 0 is not a share"),
        (["--prune", "0.5", "--fine-tune", "5"], "--fine-tune: 5 is not a share of the recipe; give a number in (0, 4"),
        ([], "give --quantize int8, --prune SHARE"),
    ],
)
def test_bad_input_exits_2(digits: Bundle, tmp_path: Path, extra: list[str], message: str) -> None:
    done = run_sw2("compress", str(digits.path), "--out", str(tmp_path / "o"), *extra)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "o").exists()


def test_out_inside_the_bundle_is_refused(digits: Bundle) -> None:
    with pytest.raises(sw2.UserError, match="inside the bundle"):
        sw2.compress(digits, "int8", out=digits.path / "int8")


def test_dynamic_int8_of_a_text_model_and_pruned_mlp(tmp_path: Path) -> None:
    """A small transformer on text: dynamic quantisation; an MLP on a table: its hidden units pruned."""
    rng = np.random.default_rng(0)
    words = {"yes": ["good", "great", "fine", "nice"], "no": ["bad", "awful", "poor", "sad"]}
    rows_ = [(" ".join(rng.choice(words[y], 4)) + " the movie", y) for y in rng.choice(["yes", "no"], 400)]
    pd.DataFrame(rows_, columns=["text", "label"]).to_csv(tmp_path / "text.csv", index=False)
    text = {
        "name": "text-small", "data": {"path": "text.csv", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
        "target": "label", "task": "classify", "text": {"tokenizer": "word", "max_tokens": 16},
        "model": {"name": "transformer", "layers": 1, "widths": [32], "heads": 2},
        "train": {"epochs": 3, "batch_size": 32, "optimizer": "adamw", "lr": 0.003},
    }  # fmt: skip
    spec = write_spec(tmp_path, text)
    bundle = sw2.train(spec, tmp_path / "text", check=False)
    done = sw2.compress(bundle, "int8", out=tmp_path / "text-c", calls=5, spec_from=spec)
    r = rows(done)
    assert json.loads((done.out / "int8" / "compress.json").read_text())["method"] == "dynamic"
    assert r["onnx int8"]["value"] >= r["eager fp32"]["value"] - 0.05
    assert Bundle(done.out / "int8", backend="onnx").predict(pd.DataFrame({"text": ["good great"]}))[0] == "yes"

    table = {**DIGITS, "name": "wine", "data": {"source": "package", "name": "wine"}, "model": {"name": "mlp"},
             "tests": []}  # fmt: skip
    table["train"] = {"epochs": 20, "batch_size": 32, "optimizer": "adamw", "lr": 0.003}
    mlp = sw2.train(table, tmp_path / "wine", check=False)
    done = sw2.compress(mlp, None, 0.5, tmp_path / "wine-c", calls=5)
    pruned = Bundle(done.out / "pruned")
    assert json.loads((done.out / "pruned" / "model.json").read_text())["kwargs"]["widths"] == [64, 64]
    assert rows(done)["pruned eager fp32"]["value"] > 0.8
    assert pruned.predict(load_wine(as_frame=True).frame.drop(columns="target").head(5)).shape == (5,)
