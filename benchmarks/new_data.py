"""Data the image examples were not tuned on: sw2 with no epochs given against the seed's Keras CNN.

Two 28x28 grayscale data sets in IDX files (made once into --work):
- `cifar_gray`: CIFAR-10 (the shared JPEGs) converted to grayscale and resized to 28x28 (50,000 train,
  10,000 test);
- `mnist_warped`: MNIST under a fixed transformation: each image (seeded, so the same every time) rotated
  by up to +-30 degrees, elastically distorted (Simard et al. 2003: alpha 34, sigma 4) and inverted.

sw2 trains examples/mnist.yaml pointed at each, with its `epochs` removed: the length is sw2's choice from
the data's size (sw2/engine/length.py); the pre-flight runs, and its time is counted in sw2's wall time.
The Keras CNN (`../shared/anchors/keras_seed_cnn.py`, 10 epochs, Adam) runs in TensorFlow's own
virtual environment (--keras-python), never a dependency of sw2. Test accuracy is read once per run, for
this figure; nothing was chosen on it.

    python -m benchmarks.new_data --keras-python /work/tfvenv/bin/python [--sets cifar_gray mnist_warped]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates, rotate

import sw2
from benchmarks.common import ROOT, datasets_dir, machine, markdown_table
from sw2.data.idx import load_pair, write_idx
from sw2.data.images import extract

KERAS = ROOT.parent / "shared" / "anchors" / "keras_seed_cnn.py"


def write_set(folder: Path, parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (images, labels) in parts.items():
        for kind, data in (("images-idx3", images), ("labels-idx1", labels)):
            raw = folder / f"{stem}-{kind}-ubyte"
            write_idx(raw, data.astype(np.uint8))
            with gzip.open(f"{raw}.gz", "wb", compresslevel=1) as f:
                f.write(raw.read_bytes())
            raw.unlink()


def cifar_gray(folder: Path) -> None:
    root = extract(datasets_dir() / "cifar10-jpg.tar.gz", Path.home() / ".cache" / "sw2")  # cifar10-jpg/
    classes = sorted(p.name for p in (root / "train").iterdir())
    parts = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in sorted((root / split / name).iterdir()):
                gray = Image.open(path).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
                images.append(np.asarray(gray))
                labels.append(label)
        parts[stem] = (np.stack(images), np.array(labels))
    write_set(folder, parts)


def warp(image: np.ndarray, rng: np.random.Generator, alpha: float = 34.0, sigma: float = 4.0) -> np.ndarray:
    turned = rotate(image.astype(np.float32), rng.uniform(-30, 30), reshape=False, order=1)
    dx, dy = (gaussian_filter(rng.uniform(-1, 1, image.shape), sigma) * alpha for _ in range(2))
    y, x = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    warped = map_coordinates(turned, [y + dy, x + dx], order=1, mode="constant")
    return 255 - np.clip(warped, 0, 255)


def mnist_warped(folder: Path) -> None:
    rng = np.random.default_rng(0)
    parts = {}
    for stem in ("train", "t10k"):
        images, labels = load_pair(datasets_dir() / "mnist", stem)
        parts[stem] = (np.stack([warp(im[0], rng) for im in images]), labels)  # N x 1 x 28 x 28
    write_set(folder, parts)


MAKERS = {"cifar_gray": cifar_gray, "mnist_warped": mnist_warped}


def sw2_run(folder: Path, seed: int) -> dict:
    spec = yaml.safe_load((ROOT / "examples" / "mnist.yaml").read_text())
    spec["data"]["path"] = str(folder)
    spec["train"].pop("epochs")
    spec["train"]["seed"] = seed
    spec["name"] = folder.name
    t0 = time.perf_counter()
    m = sw2.train(spec, f"runs/bench-new-data-{folder.name}", verbose=False).metrics
    return {
        "test": m["test"]["accuracy"],
        "wall": time.perf_counter() - t0,
        "train": m["training"]["seconds"],
        "epochs": m["training"]["length"]["epochs"],
        "preflight": m["preflight"]["seconds"],
    }


def keras_run(python: str, folder: Path) -> dict:
    out = subprocess.run([python, str(KERAS), str(folder)], capture_output=True, text=True, check=True).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[len("RESULT") :])
    return {"test": result["test_accuracy"], "wall": result["fit_s"], "tf": result["tensorflow"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keras-python", required=True, help="python of a virtual environment with tensorflow-cpu")
    ap.add_argument("--sets", nargs="+", default=list(MAKERS), choices=list(MAKERS))
    ap.add_argument("--work", type=Path, default=Path("runs/new-data"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(machine(), flush=True)
    rows = []
    for name in args.sets:
        folder = args.work / name
        if not (folder / "t10k-labels-idx1-ubyte.gz").exists():
            MAKERS[name](folder)
        ours = sw2_run(folder, args.seed)
        print(name, "sw2", ours, flush=True)
        theirs = keras_run(args.keras_python, folder)
        print(name, "keras", theirs, flush=True)
        rows.append(
            {
                "set": name,
                "sw2": f"{ours['test']:.2%} in {ours['wall']:.0f} s ({ours['epochs']:g} epochs chosen; training "
                f"{ours['train']:.0f} s, pre-flight {ours['preflight']:.0f} s)",
                "keras": f"{theirs['test']:.2%} in {theirs['wall']:.0f} s (TF {theirs['tf']}, 10 epochs)",
                "gain": f"{100 * (ours['test'] - theirs['test']):+.2f} points, "
                f"{theirs['wall'] / ours['wall']:.2f}x faster",
            }
        )
    print(
        markdown_table(
            rows, {"set": "data", "sw2": "sw2, no epochs given", "keras": "seed Keras CNN", "gain": "sw2 vs Keras"}
        )
    )


if __name__ == "__main__":
    main()
