"""Image transfer learning: MobileNetV2 pretrained on ImageNet, fine-tuned, against a conv net trained from
scratch, both on the same 1,000-image CIFAR-10 sample (seeded, stratified) and scored on the 10,000 test
images, in one run.

    python -m benchmarks.transfer [--runs scratch mobilenet_frozen mobilenet]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import sw2
from benchmarks.common import datasets_dir, machine

DATA = {"split": {"val": 0.02, "seed": 0}, "limit": 1000}
RUNS: dict[str, dict] = {
    "scratch": {  # the examples/cifar10.yaml net and recipe, more epochs for the small sample
        "model": {"name": "convnet", "widths": [16, 64, 128], "depth": 2, "whiten": 12, "logit_scale": 0.111},
        "train": {
            "epochs": 40,
            "batch_size": 64,
            "optimizer": "nesterov",
            "lr": 0.2,
            "momentum": 0.85,
            "weight_decay": 0.001,
            "norm_lr_scale": 64,
            "warmup": 0.23,
            "label_smoothing": 0.2,
        },
        "augment": {"flip": True, "translate": 2},
    },  # fmt: skip
    "mobilenet_frozen": {
        "model": {"name": "mobilenet", "finetune": "frozen", "resolution": 96},
        "train": {"epochs": 15, "batch_size": 64, "optimizer": "adamw", "lr": 0.003, "label_smoothing": 0.1},
        "augment": {"flip": True, "translate": 2},
    },
    "mobilenet": {
        "model": {"name": "mobilenet", "finetune": "full", "resolution": 96},
        "train": {
            "epochs": 10,
            "batch_size": 32,
            "optimizer": "adamw",
            "lr": 0.001,
            "weight_decay": 0.01,
            "label_smoothing": 0.1,
            "layer_lr_decay": 0.8,
            "unfreeze": 0.3,
        },
        "augment": {"flip": True, "translate": 2},
    },  # fmt: skip
}


def run(name: str, out: Path) -> dict:
    spec = {"name": f"transfer-{name}", "data": {"path": str(datasets_dir() / "cifar10-jpg.tar.gz"), **DATA},
            **RUNS[name]}  # fmt: skip
    bundle = sw2.train(spec, out / name, verbose=False, check=False)
    m = bundle.metrics
    return {
        "run": name,
        "train_examples": m["data"]["train"],
        "val_accuracy": round(m["val"]["accuracy"], 4),
        "test_accuracy": round(m["test"]["accuracy"], 4),
        "train_seconds": round(m["training"]["seconds"], 1),
        "parameters": sum(p.numel() for p in bundle.model.parameters()),
    }


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            rows.append(run(name, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    print("| run | train images | val accuracy | test accuracy | training s | parameters |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['run']} | {r['train_examples']} | {r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} | "
              f"{r['train_seconds']} | {r['parameters']:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
