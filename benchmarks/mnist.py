"""MNIST: sw2's example spec (accuracy and training time), and time-to-99% against a plain PyTorch loop.

Part 1 trains examples/mnist.yaml for each seed and reports test accuracy, training seconds and the
pre-flight checks' seconds (they run before training and are not part of its time).
Part 2 runs one short recipe twice per seed, alternating: a hand-written PyTorch loop and sw2, on the
same 55,000-image train split, same model, same optimizer, schedule and label smoothing; both are
scored on the 10,000 test images. Medians over seeds.

    python -m benchmarks.mnist --seeds 0 1 2 [--quick-epochs 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import yaml

import sw2
from benchmarks.common import ROOT, datasets_dir, machine
from sw2.data import prepare
from sw2.engine.hardware import tune_malloc
from sw2.models import build, choose
from sw2.spec import parse_spec
from sw2.tasks import TASKS


def example_spec(seed: int, **train: float) -> dict:
    spec = yaml.safe_load((ROOT / "examples" / "mnist.yaml").read_text())
    spec["data"]["path"] = str(datasets_dir() / "mnist")
    spec["train"].update(seed=seed, **train)
    return spec


def plain(data, spec, seed: int) -> tuple[float, float]:
    """The same recipe by hand: (training seconds, test accuracy)."""
    cfg = spec.train
    name, kwargs = choose(spec.model, data.encoder, len(data.train))
    torch.manual_seed(seed)
    model = build(name, kwargs)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    x, y = data.train.inputs["image"], data.train.target
    per_epoch = len(x) // cfg.batch_size
    steps = int(cfg.epochs * per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=steps, pct_start=cfg.warmup, anneal_strategy="linear"
    )
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    for i in range(steps):
        if i % per_epoch == 0:
            perm = torch.randperm(len(x), generator=g)
        j = (i % per_epoch) * cfg.batch_size
        idx = perm[j : j + cfg.batch_size]
        loss = F.cross_entropy(model({"image": x[idx]}), y[idx], label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        acc = TASKS.get("classify").score(model(data.test.inputs), data.test.target)
    return seconds, acc


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick-epochs", type=float, default=1.0)
    ap.add_argument("--skip-example", action="store_true")
    args = ap.parse_args()
    tune_malloc()

    if not args.skip_example:
        rows = []
        for seed in args.seeds:
            m = sw2.train(example_spec(seed), f"runs/bench-mnist-{seed}", verbose=False).metrics
            rows.append((m["test"]["accuracy"], m["training"]["seconds"], m["preflight"]["seconds"]))
            print(
                f"example seed {seed}: test accuracy {rows[-1][0]:.4f}, training {rows[-1][1]:.1f} s, "
                f"pre-flight {rows[-1][2]:.1f} s ({100 * rows[-1][2] / rows[-1][1]:.1f}% of training)",
                flush=True,
            )
        print(
            f"example median: test accuracy {statistics.median(r[0] for r in rows):.4f}, "
            f"training {statistics.median(r[1] for r in rows):.1f} s, "
            f"pre-flight {statistics.median(r[2] for r in rows):.1f} s"
        )

    quick = {"epochs": args.quick_epochs}
    spec0 = parse_spec(example_spec(0, **quick))
    data = prepare(spec0, ROOT, TASKS.get(spec0.task))
    quick_aug = {"translate": 0}
    rows = []
    for seed in args.seeds:
        raw = example_spec(seed, **quick)
        raw["augment"] = quick_aug
        p_sec, p_acc = plain(data, parse_spec(raw), seed)
        m = sw2.train(raw, f"runs/bench-mnist-quick-{seed}", verbose=False, check=False).metrics  # engine only
        s_sec, s_acc = m["training"]["seconds"], m["test"]["accuracy"]
        rows.append((p_sec, p_acc, s_sec, s_acc))
        print(
            f"quick seed {seed}: plain {p_sec:.1f} s {p_acc:.4f}   sw2 {s_sec:.1f} s {s_acc:.4f}   "
            f"time ratio {s_sec / p_sec:.2f}",
            flush=True,
        )
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(
        f"quick median ({args.quick_epochs} epoch): plain {med[0]:.1f} s acc {statistics.mean(r[1] for r in rows):.4f}"
        f" (mean)  sw2 {med[2]:.1f} s acc {statistics.mean(r[3] for r in rows):.4f} (mean)  sw2/plain time "
        f"{med[2] / med[0]:.2f}"
    )


if __name__ == "__main__":
    main()
