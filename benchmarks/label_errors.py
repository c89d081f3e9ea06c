"""Label errors: `sw2 doctor` on full MNIST with 2% of the training labels flipped on purpose.

For each seed, 2% of the 60,000 training labels are changed to another class chosen at random; the
noisy IDX files go to a temporary folder (the 10,000 test images stay the test split, untouched). The
doctor uses examples/mnist.yaml's model and training recipe. Reported: precision at N (the share of
flipped examples among the N lowest-ranked, N = the number flipped), recall of cleanlab's flagged set,
the out-of-fold accuracy and the seconds. Medians over seeds.

    python -m benchmarks.label_errors --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import yaml

import sw2
from benchmarks.common import ROOT, datasets_dir, machine
from sw2.data import idx


def noisy_mnist(folder: Path, share: float, seed: int, limit: int | None = None) -> set[str]:
    """Write MNIST's training set with `share` of its labels flipped into `folder`; the flipped ids."""
    src = datasets_dir() / "mnist"
    pair = idx.load_pair(src, "train")
    if pair is None:
        raise SystemExit(f"MNIST not found in {src}; set SW2_DATASETS")
    images, labels = pair[0][:limit, 0], pair[1][:limit].astype(np.uint8)
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), int(round(share * len(labels))), replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10  # always another class
    folder.mkdir(parents=True, exist_ok=True)
    idx.write_idx(folder / "train-images-idx3-ubyte", images)
    idx.write_idx(folder / "train-labels-idx1-ubyte", labels)
    if limit is None:
        for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            found = idx.find(src, name)
            assert found is not None
            (folder / found.name).symlink_to(found)
    return {f"train:{i}" for i in flipped}


def run(seed: int, share: float, folds: int | None, epochs: float | None) -> dict:
    spec = yaml.safe_load((ROOT / "examples" / "mnist.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        flipped = noisy_mnist(Path(tmp) / "mnist", share, seed)
        spec["data"]["path"] = str(Path(tmp) / "mnist")
        found = sw2.doctor(spec, Path(tmp) / "out", folds=folds, epochs=epochs)
    table = found.table
    bad = table["id"].isin(flipped).to_numpy()
    n = int(bad.sum())  # flipped examples in the pool (cleaning may drop a duplicate)
    flagged = table["flagged"].to_numpy()
    return {
        "seed": seed,
        "flipped": n,
        "precision_at_n": round(float(bad[:n].mean()), 4),
        "flagged": int(flagged.sum()),
        "flagged_precision": round(float(bad[flagged].mean()), 4),
        "flagged_recall": round(float(bad[flagged].sum() / n), 4),
        **{k: found.summary[k] for k in ("examples", "folds", "out_of_fold_accuracy", "seconds")},
    }


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--share", type=float, default=0.02)
    ap.add_argument("--folds", type=int)
    ap.add_argument("--epochs", type=float)
    args = ap.parse_args()
    rows = [run(s, args.share, args.folds, args.epochs) for s in args.seeds]
    for r in rows:
        print(json.dumps(r))
    for key in ("precision_at_n", "flagged_precision", "flagged_recall", "out_of_fold_accuracy", "seconds"):
        print(f"median {key}: {statistics.median(r[key] for r in rows)}")


if __name__ == "__main__":
    main()
