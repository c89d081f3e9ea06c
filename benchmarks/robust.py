"""Adversarial robustness on MNIST: examples/mnist_robust.yaml (adversarial training, fast FGSM at eps 0.1)
beside the standard examples/mnist.yaml, both under sw2's PGD-20 at eps 0.1 (L-infinity, pixels in [0, 1]) on
the 10,000 test images, and under an independent PGD-20 (torchattacks, run in --bench-python's environment, which
holds sw2 and torchattacks) on the same images: sw2's attack must bring accuracy at least as low, within 1 point.

    python -m benchmarks.robust --bench-python /path/to/venv/bin/python [--eps 0.1] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import sw2
from benchmarks.common import ROOT, machine, markdown_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-python", required=True)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--keep", help="a folder to keep the two bundles in")
    args = ap.parse_args()
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.keep or tmp)
        for name in ("mnist", "mnist_robust"):
            t0 = time.perf_counter()
            b = sw2.train(ROOT / "examples" / f"{name}.yaml", where / name, check=False)
            wall = time.perf_counter() - t0
            mine = sw2.attack(b, method="pgd", eps=args.eps, steps=args.steps)
            out = where / f"{name}-torchattacks.json"
            check = [args.bench_python, str(Path(__file__).parent / "robust_check.py"), str(b.path),
                     str(ROOT / "examples" / f"{name}.yaml"), str(args.eps), str(args.steps), str(out)]  # fmt: skip
            subprocess.run(check, check=True, cwd=ROOT)
            other = json.loads(out.read_text())
            rows.append({"model": name, "train s": f"{b.metrics['training']['seconds']:.0f}", "wall s": f"{wall:.0f}",
                         "clean": f"{mine['clean']['accuracy']:.2%}",
                         "sw2 PGD": f"{mine['attacked']['accuracy']:.2%}",
                         "torchattacks PGD": f"{other['attacked']:.2%}",
                         "sw2 - torchattacks": f"{(mine['attacked']['accuracy'] - other['attacked']) * 100:+.2f} pt",
                         })  # fmt: skip
            print(rows[-1], flush=True)
    print(markdown_table(rows, {k: k for k in rows[0]}))


if __name__ == "__main__":
    main()
