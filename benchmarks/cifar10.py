"""CIFAR-10: sw2's example spec, once per training seed, and the median test accuracy.

Each seed trains examples/cifar10.yaml (or --spec) through `sw2.train`, pre-flight included (its seconds
are reported apart: they are not part of the training time). The data split stays the spec's; the seed
changes the initial weights, the batch order and the augmentation draws.

    python -m benchmarks.cifar10 --seeds 0 1 2 [--spec examples/cifar10_long.yaml]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import yaml

import sw2
from benchmarks.common import ROOT, datasets_dir, machine, markdown_table


def spec_for(path: Path, seed: int) -> dict:
    spec = yaml.safe_load(path.read_text())
    spec["data"]["path"] = str(datasets_dir() / "cifar10-jpg.tar.gz")
    spec["train"]["seed"] = seed
    return spec


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--spec", type=Path, default=ROOT / "examples" / "cifar10.yaml")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        m = sw2.train(spec_for(args.spec, seed), f"runs/bench-cifar10-{seed}", verbose=False).metrics
        rows.append(
            {
                "seed": seed,
                "test": f"{m['test']['accuracy']:.4f}",
                "seconds": f"{m['training']['seconds']:.1f}",
                "epochs": m["training"]["epochs_done"],
                "img_s": f"{m['training']['examples_per_second']:,.0f}",
                "preflight": f"{m['preflight']['seconds']:.1f}",
            }
        )
        print(rows[-1], flush=True)
    accs = [float(r["test"]) for r in rows]
    print(markdown_table(rows, {k: k for k in rows[0]}))
    print(f"median test accuracy {statistics.median(accs):.4f} over seeds {args.seeds} ({args.spec.name})")


if __name__ == "__main__":
    main()
