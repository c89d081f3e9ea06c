"""task generate_image: a class-conditional DCGAN and a diffusion model, each one short epoch on a slice of
MNIST, write bundles that reload, report and sample from Python, the CLI and the server; bad input is a one-line
error with exit code 2 and nothing written. (The tiny example in tests/test_conformance.py covers the
pre-flight, resume after SIGKILL, export refusal and the hostile-input contract.)"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from safetensors.torch import load_file

import sw2
from sw2.errors import UserError
from sw2.outputs import checkpoint_dir
from sw2.tasks import TASKS
from tests.conftest import KILLED, ROOT, need_dataset, sw2_here, write_spec
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
    spec = mnist_spec(model, epochs=0.43)  # 640 of the GAN's 1,500 images: the same data, so the same judge
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


def test_a_crafted_model_json_cannot_make_the_loader_allocate_gigabytes(gan, tmp_path):
    bundle = shutil.copytree(gan, tmp_path / "b")
    arch = json.loads((bundle / "model.json").read_text())
    arch["modules"]["ema"]["kwargs"]["latent"] = 20_000  # about 1 GB of weights, from a file of a few MB
    (bundle / "model.json").write_text(json.dumps(arch))
    with pytest.raises(UserError, match="model.json does not match the weights in model.safetensors"):
        sw2.load(bundle)
    shutil.copy(gan / "model.json", bundle / "model.json")
    state = json.loads((bundle / "preprocess.json").read_text())
    state["image_shape"] = [3, 65536, 65536]  # noise of 51 GB for one /v1/sample of 64
    (bundle / "preprocess.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="preprocess.json: image_shape"):
        sw2.load(bundle)


def test_diffusion_bundle_samples_with_guidance_and_scores(diffusion):
    metrics = json.loads((diffusion / "metrics.json").read_text())
    assert metrics["test"]["frechet_distance"] >= 0
    assert metrics["training"]["epochs_done"] == pytest.approx(0.43, abs=0.01)
    bundle = sw2.load(diffusion)
    assert bundle.model["generator"].alpha_bar.shape == (1001,)  # the schedule travels with the weights
    images = bundle.sample(6, classes="0", seed=1)
    assert images.shape == (6, 1, 28, 28) and (images == bundle.sample(6, classes="0", seed=1)).all()
    calls = []

    def until() -> None:  # a server's deadline check: raises to stop the work
        calls.append(1)
        if len(calls) == 3:
            raise TimeoutError

    with pytest.raises(TimeoutError):
        bundle.task.sample(bundle, 6, classes="0", seed=1, until=until)
    assert len(calls) == 3  # before the chunk, then after each DDIM step: stopped 2 steps of 5 in


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


def test_unlabelled_images_train_a_diffusion_model_that_resumes_after_sigkill_bit_identically(tmp_path):
    """Images directly in one folder (no classes) are judged by a convnet trained to tell their turns apart; a
    diffusion run killed after epoch 1's checkpoint resumes to the uninterrupted run's history and weights."""
    rng = np.random.default_rng(0)
    (tmp_path / "flat").mkdir()
    for i in range(64):
        img = rng.integers(0, 40, (8, 8), dtype=np.uint8)
        img[2:6, 2:6] = 220 if i % 2 else 0
        Image.fromarray(img, "L").save(tmp_path / "flat" / f"{i}.png")
    spec = {"name": "flat", "task": "generate_image", "data": {"path": "flat", "split": {"val": 0.25, "test": 0.25}},
            "model": {"name": "diffusion", "widths": [8, 16, 16], "timesteps": 50, "sample_steps": 4, "ema": 0.9},
            "train": {"epochs": 2, "batch_size": 8, "deterministic": True, "threads": 1, "optimizer": "adam",
                      "lr": 2e-3}}  # fmt: skip
    path = write_spec(tmp_path, spec)
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    killed = subprocess.Popen([sys.executable, str(script), str(path), str(tmp_path / "resumed")], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    bundle = sw2.train(path, tmp_path / "bundle", verbose=False, check=False)
    test = bundle.metrics["test"]
    assert "confident" not in test and test["frechet_distance"] >= 0, test  # 8 steps: no quality asked
    assert test["real"]["frechet_distance"] < test["baseline"]["frechet_distance"]
    judge = bundle.metrics["judge"]
    assert judge["accuracy"] is None and "turns apart" in judge["model"] and 0 <= judge["turn_accuracy"] <= 1
    assert "turns apart" in (bundle.path / "report.html").read_text(encoding="utf-8")
    assert bundle.sample(3, seed=0).shape == (3, 1, 8, 8)
    with pytest.raises(UserError, match="not class-conditional"):
        bundle.sample(2, classes="0")

    assert killed.wait(timeout=300) == -signal.SIGKILL, killed.stderr.read()[-2000:]
    assert checkpoint_dir(tmp_path / "resumed").exists()
    r = sw2_here("train", str(path), "--out", str(tmp_path / "resumed"), "--resume", "--no-check", "--quiet")
    assert r.returncode == 0, r.stderr
    keys = ("epoch", "step", "train_loss", "val_loss")
    rows = [[{k: row.get(k) for k in keys} for row in map(json.loads, (b / "history.jsonl").read_text().splitlines())]
            for b in (bundle.path, tmp_path / "resumed")]  # fmt: skip
    assert rows[0] == rows[1] and len(rows[0]) == 2, rows
    a, b = load_file(bundle.path / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), "resumed weights differ"

    # images beside class folders are refused, not silently left out
    (tmp_path / "mixed" / "a").mkdir(parents=True)
    for name in ("mixed/a/0.png", "mixed/loose.png"):
        shutil.copy(tmp_path / "flat" / "0.png", tmp_path / name)
    from sw2.data.images import class_folders

    with pytest.raises(UserError, match="lie beside the class folders"):
        class_folders(tmp_path / "mixed")
    # task classify refuses images without classes, naming the layout
    spec = {"name": "flat", "task": "classify", "data": {"path": "flat"}, "train": {"epochs": 1}}
    r = sw2_here("train", str(write_spec(tmp_path, spec, "c.yaml")), "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "<folder>/<class>/<image>" in r.stderr and not (tmp_path / "c").exists(), r.stderr
    assert os.listdir(tmp_path / "flat")  # the data is untouched


def test_tune_searches_a_gan_by_its_frechet_distance(tmp_path):
    """sw2 tune on an image generator: the task's own space (both lrs, TTUR), each trial scored by the judge's
    Fréchet distance after its last epoch (no cross-validation: it learns no target from examples)."""
    spec = TASKS.get("generate_image").tiny_example(tmp_path).spec
    spec["train"] = {**spec["train"], "epochs": 4}
    done = sw2.tune(write_spec(tmp_path, spec), tmp_path / "tune", trials=3)
    assert len(done.leaderboard) == 3 and {"model.generator_lr", "model.discriminator_lr"} <= set(done.leaderboard[0])
    values = [row["val"] for row in done.leaderboard if row["state"] == "done"]
    assert values and all(v <= 0 for v in values)  # -(Fréchet distance)
    assert done.confirmed == [] and (tmp_path / "tune" / "best.yaml").is_file()
    assert "frechet_distance" in done.bundle.metrics["test"]
