"""task generate_image: a class-conditional DCGAN and a diffusion model, each one short epoch on a slice of
MNIST, write bundles that reload, report and sample from Python, the CLI and the server; bad input is a one-line
error with exit code 2 and nothing written. (The tiny example in tests/test_conformance.py covers the
pre-flight, resume after SIGKILL, export refusal and the hostile-input contract.)"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import sw2
from sw2.errors import UserError
from tests.conftest import need_dataset, sw2_here, write_spec
from tests.test_serve import Server

FAST = {"batch_size": 64, "threads": 2, "seed": 0}


def mnist_spec(model: dict, epochs: float = 1, limit: int = 1500) -> dict:
    return {"name": f"mnist-{model['name']}", "task": "generate_image",
            "data": {"path": str(need_dataset("mnist")), "limit": limit, "split": {"val": 0.02, "seed": 0}},
            "model": model, "train": {**FAST, "epochs": epochs}}  # fmt: skip


@pytest.fixture(scope="module")
def gan(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gan")
    spec = mnist_spec({"name": "dcgan", "conditional": True, "spectral_norm": True, "ema": 0.9})
    return sw2.train(write_spec(folder, spec), folder / "bundle", verbose=False).path


@pytest.fixture(scope="module")
def diffusion(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("diffusion")
    model = {"name": "diffusion", "widths": [16, 32, 32], "conditional": True, "guidance": 1.0, "sample_steps": 5}
    spec = mnist_spec(model, limit=640)
    spec["train"].update(optimizer="adam", lr=2e-3)
    return sw2.train(write_spec(folder, spec), folder / "bundle", verbose=False, check=False).path


def test_dcgan_bundle_holds_grids_scores_and_curves_and_samples_by_class(gan):
    files = {p.name for p in gan.iterdir()}
    assert {"samples.png", "interpolation.png", "samples_epoch_001.png", "report.html", "model.safetensors"} <= files
    metrics = json.loads((gan / "metrics.json").read_text())
    test = metrics["test"]
    assert test["n"] == 500 and test["frechet_distance"] >= 0 and 0 <= test["confident"] <= 1
    assert test["real"]["confident"] > 0.8 and test["real"]["frechet_distance"] < test["frechet_distance"]
    assert metrics["judge"]["accuracy"] > 0.9  # the judge sw2 trained reads real digits
    verdicts = {v["check"]: v["status"] for v in metrics["preflight"]["verdicts"]}
    assert verdicts["overfit one batch"] == "SKIP" and verdicts["adversarial balance"] in ("PASS", "WARN")
    row = json.loads((gan / "history.jsonl").read_text().splitlines()[0])
    assert {"val_loss", "confident", "class_entropy", "top_class_share", "d_loss", "g_loss"} <= row.keys()
    report = (gan / "report.html").read_text(encoding="utf-8")
    assert "Samples" in report and "Fréchet distance" in report and "latent interpolation" in report
    bundle = sw2.load(gan)
    assert set(bundle.networks) >= {"generator", "discriminator", "ema", "judge"}
    images = bundle.sample(10, seed=3)
    assert images.shape == (10, 1, 28, 28) and str(images.dtype) == "torch.uint8"
    assert (bundle.sample(10, seed=3) == images).all() and not (bundle.sample(10, seed=4) == images).all()
    sevens = bundle.sample(4, classes="7", seed=0)  # a class name (MNIST's labels are digits)
    assert sevens.shape[0] == 4 and not (sevens == bundle.sample(4, classes="1", seed=0)).all()
    assert bundle.sample(3, classes=["1", "2", "3"]).shape[0] == 3
    for bad, match in [({"n": 0}, "n: 0"), ({"n": 10**6}, "n: 1000000"), ({"n": 2, "classes": "cat"}, "not a class"),
                       ({"n": 3, "classes": ["1", "2"]}, "2 classes for 3 images")]:  # fmt: skip
        with pytest.raises(UserError, match=match) as err:
            bundle.sample(**bad)
        assert len(str(err.value).splitlines()) == 1
    with pytest.raises(UserError, match="sw2 sample"):
        bundle.predict(np.zeros((1, 1, 28, 28), np.uint8))


def test_diffusion_bundle_samples_with_guidance_and_scores(diffusion):
    metrics = json.loads((diffusion / "metrics.json").read_text())
    assert metrics["test"]["frechet_distance"] >= 0 and metrics["training"]["epochs_done"] == 1
    bundle = sw2.load(diffusion)
    assert bundle.model["generator"].alpha_bar.shape == (1001,)  # the schedule travels with the weights
    images = bundle.sample(6, classes="0", seed=1)
    assert images.shape == (6, 1, 28, 28) and (images == bundle.sample(6, classes="0", seed=1)).all()


def test_sw2_sample_writes_a_grid_or_a_folder_and_refuses_bad_input(gan, tmp_path):
    r = sw2_here("sample", str(gan), "--n", "12", "--class", "4", "--seed", "1", "--out", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "g.png") as grid:
        assert grid.size[0] > 28 * 8 and grid.mode == "L"
    r = sw2_here("sample", str(gan), "--n", "3", "--out", str(tmp_path / "pngs"))
    assert r.returncode == 0 and sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [
        "0000.png", "0001.png", "0002.png"]  # fmt: skip
    for args, words in [(["--n", "0"], "n: 0"), (["--class", "cat"], "not a class"), (["--n", "100000"], "n: ")]:
        r = sw2_here("sample", str(gan), *args, "--out", str(tmp_path / "bad.png"))
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "bad.png").exists()  # nothing written
    before = (tmp_path / "g.png").read_bytes()
    r = sw2_here("sample", str(gan), "--n", "2", "--out", str(tmp_path / "g.png"))
    assert r.returncode == 2 and "--force" in r.stderr and (tmp_path / "g.png").read_bytes() == before


def test_server_samples_a_png_grid_or_base64_pngs_behind_the_key(gan):
    with Server(gan, "--max-samples", "16") as server:
        answer = server.post("/v1/sample", json={"n": 4, "seed": 2, "class": "5"})
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        Image.open(io.BytesIO(answer.content)).verify()
        answer = server.post("/v1/sample", json={"n": 3, "format": "json", "class": ["1", "2", "3"]})
        pngs = answer.json()["images"]
        assert len(pngs) == 3 and Image.open(io.BytesIO(base64.b64decode(pngs[0]))).size == (28, 28)
        assert server.post("/v1/sample", json={"n": 17}).status_code == 422  # past --max-samples
        for body in ({"n": 0}, {"n": "4"}, {"size": 4}, {"n": 2, "class": "cat"}, {"format": "gif"}):
            bad = server.post("/v1/sample", json=body)
            assert bad.status_code == 422 and "error" in bad.json(), (body, bad.text)
        assert server.post("/v1/predict", json={"rows": [{}]}).status_code == 400
        assert server.get("/v1/model").json()["inputs"] == {"kind": "image generation"}
        import httpx

        assert httpx.post(server.url + "/v1/sample", json={"n": 1}).status_code == 401  # no key


def test_bad_specs_are_one_line_errors_and_nothing_is_written(tmp_path):
    pd.DataFrame({"x": range(40), "label": [0, 1] * 20}).to_csv(tmp_path / "t.csv", index=False)
    cases = [
        ({"data": {"path": "t.csv"}}, "learns images"),
        ({"data": {"path": "t.csv"}, "model": {"name": "dcgan", "generator_optimizer": "adma"}}, "did you mean 'adam'"),
        ({"data": {"path": "t.csv"}, "model": {"name": "dcgan", "discriminatr_lr": 1e-3}}, "discriminator_lr"),
        ({"data": {"path": "t.csv"}, "model": {"name": "bag"}}, "image generator"),
    ]
    for i, (spec, words) in enumerate(cases):
        path = write_spec(tmp_path, {"name": "bad", "task": "generate_image", **spec}, f"s{i}.yaml")
        r = sw2_here("train", str(path), "--out", str(tmp_path / f"b{i}"))
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / f"b{i}").exists()
