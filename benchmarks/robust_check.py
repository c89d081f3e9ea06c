"""An independent PGD (torchattacks, in the benchmark's own environment, never an sw2 dependency) against a
bundle, on the same test images sw2's attack used:

    python benchmarks/robust_check.py BUNDLE SPEC EPS STEPS OUT.json

The network sees pixels in [0, 1] here (the bundle's model takes 0..255 and normalises inside): torchattacks'
PGD from a random start, step 2.5 eps / steps as sw2's default, in eval mode."""

from __future__ import annotations

import json
import sys
import time

import torch
import torchattacks
from torch import nn

import sw2


class Pixels01(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model({"image": x * 255.0}).float()


def main() -> None:
    path, spec_file, eps, steps, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    b = sw2.load(path)
    spec, root = sw2.load_spec(spec_file)
    held = b.task.held_out(b, spec, root)
    images = b.encoder.inputs(held.test)["image"].float() / 255.0
    target = b.encoder.target(held.test.target)
    net = Pixels01(b.model).eval()
    attack = torchattacks.PGD(net, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    attack.set_normalization_used(mean=[0.0], std=[1.0])
    torch.manual_seed(0)
    t0, right, clean = time.perf_counter(), 0, 0
    for i in range(0, len(target), 256):
        x, y = images[i : i + 256], target[i : i + 256]
        adv = attack(x, y)
        with torch.no_grad():
            right += int((net(adv).argmax(1) == y).sum())
            clean += int((net(x).argmax(1) == y).sum())
    record = {"attack": f"torchattacks {torchattacks.__version__} PGD", "eps": eps, "steps": steps,
              "n": len(target), "clean": clean / len(target), "attacked": right / len(target),
              "seconds": time.perf_counter() - t0}  # fmt: skip
    with open(out, "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
