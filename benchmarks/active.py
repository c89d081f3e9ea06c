"""Active learning, simulated on MNIST: start from 100 labelled training images drawn at random, then 5 rounds of
+100, chosen by `sw2 suggest` (margin with its k-center diversity step) or at random, each round a model trained
afresh on the labels so far and scored on the 10,000 test images; 3 seeds, active and random side by side.

    python -m benchmarks.active [--seeds 0 1 2] [--rounds 5] [--start 100] [--step 100] [--plot docs/active_mnist.png]

The pool is the other 59,900 training images (their labels hidden, then revealed for the picks). Each model is
examples/mnist.yaml's conv net for 40 epochs of batches of 32 (a recipe for a few hundred images, fixed before
measuring); nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import sw2
from benchmarks.common import machine, markdown_table, mnist_tensors

SPEC = {"task": "classify", "model": {"name": "convnet", "widths": [16, 32, 64], "activation": "relu"},
        "train": {"epochs": 40, "batch_size": 32, "optimizer": "nesterov", "lr": 0.05, "momentum": 0.9,
                  "weight_decay": 0.0005, "warmup": 0.1},
        "augment": {"translate": 1}}  # fmt: skip


def train_on(images: np.ndarray, labels: np.ndarray, folder: Path, seed: int) -> sw2.bundle.Bundle:
    """A bundle trained on exactly these images (class folders of PNGs; no split held out)."""
    data = folder / "labelled"
    for i, (img, y) in enumerate(zip(images, labels)):
        (data / str(int(y))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.reshape(28, 28)).save(data / str(int(y)) / f"{i:05d}.png")
    spec = {**SPEC, "name": "active", "data": {"path": str(data), "split": {"val": 0.0, "test": 0.0, "seed": seed}},
            "train": {**SPEC["train"], "seed": seed}}  # fmt: skip
    return sw2.train(spec, folder / "bundle", check=False)


def run(strategy: str, seed: int, args: argparse.Namespace, x: np.ndarray, y: np.ndarray, tx, ty) -> list[float]:
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(len(x), args.start, replace=False))
    curve = []
    for r in range(args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            b = train_on(x[labelled], y[labelled], Path(tmp), seed)
            curve.append(float((b.predict(tx).astype(int) == ty).mean()))
            if r == args.rounds:
                break
            pool = np.setdiff1d(np.arange(len(x)), labelled)
            if strategy == "random":
                picks = list(rng.choice(pool, args.step, replace=False))
            else:
                rows = sw2.suggest(b, x[pool], args.step, strategy=strategy)
                picks = [int(pool[int(i)]) for i in rows["id"]]
        labelled += picks
        print(f"{strategy} seed {seed} round {r}: {len(labelled) - args.step} labels -> {curve[-1]:.4f}", flush=True)
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--start", type=int, default=100)
    ap.add_argument("--step", type=int, default=100)
    ap.add_argument("--strategy", default="margin")
    ap.add_argument("--plot", help="a PNG of both curves (median and range over the seeds)")
    args = ap.parse_args()
    print(machine())
    x, y = (t.numpy() for t in mnist_tensors("train"))
    tx, ty = (t.numpy() for t in mnist_tensors("test"))
    curves: dict[str, list[list[float]]] = {args.strategy: [], "random": []}
    t0 = time.perf_counter()
    for seed in args.seeds:
        for strategy in curves:
            curves[strategy].append(run(strategy, seed, args, x, y.astype(int), tx, ty.astype(int)))
    rows = []
    for r in range(args.rounds + 1):
        row = {"labels": args.start + r * args.step}
        for strategy, runs in curves.items():
            row[strategy] = f"{statistics.median(c[r] for c in runs):.2%}"
            row[f"{strategy} (each)"] = ", ".join(f"{c[r]:.2%}" for c in runs)
        rows.append(row)
    print(markdown_table(rows, {k: k for k in rows[0]}))
    print(f"{time.perf_counter() - t0:.0f} s")
    print(json.dumps(curves))
    if args.plot:
        plot(curves, [args.start + r * args.step for r in range(args.rounds + 1)], args.plot)


def plot(curves: dict[str, list[list[float]]], labels: list[int], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for (name, runs), style in zip(curves.items(), ("o-", "s--")):
        at = [[c[r] * 100 for c in runs] for r in range(len(labels))]
        shown = "sw2 suggest (margin + k-center)" if name == "margin" else name
        ax.plot(labels, [statistics.median(v) for v in at], style, label=shown)
        ax.fill_between(labels, [min(v) for v in at], [max(v) for v in at], alpha=0.2)
    ax.set_xlabel("labelled training images")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_title("Active vs random selection (median and range of 3 seeds)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
