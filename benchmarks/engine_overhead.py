"""Engine overhead: sw2's training loop vs a plain hand-written PyTorch loop, same model, same tensors.

Both train the same ConvNet on the same in-memory uint8 MNIST tensors with the same optimizer and
one-cycle schedule, alternating (plain, sw2, plain, sw2, ...) in one process so that both see the
same machine state. Reports images/second of each and the median of the per-round ratios.

    python benchmarks/engine_overhead.py --rounds 5 [--images 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.common import machine, mnist_tensors
from sw2.data.dataset import TensorSet
from sw2.engine import fit
from sw2.engine.hardware import tune_malloc
from sw2.models import build
from sw2.spec import parse_spec
from sw2.tasks import TASKS

BATCH, LR = 128, 0.2


def make_model(seed: int, mean: float, std: float) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build(
        "convnet", {"in_shape": [1, 28, 28], "n_out": 10, "mean": [mean], "std": [std], "widths": [16, 32, 64]}
    )


def plain_loop(x: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> float:
    """What a user writes by hand: permutation, slice, forward, loss, backward, step, one-cycle lr."""
    model = make_model(0, mean, std)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = len(x) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=steps, pct_start=0.2, anneal_strategy="linear"
    )
    g = torch.Generator().manual_seed(0)
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(x), generator=g)
    for i in range(steps):
        idx = perm[i * BATCH : (i + 1) * BATCH]
        loss = F.cross_entropy(model({"image": x[idx]}), y[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return steps * BATCH / (time.perf_counter() - t0)


def sw2_loop(x: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> float:
    spec = parse_spec(
        {
            "data": {"path": "unused"},
            "train": {
                "epochs": 1,
                "batch_size": BATCH,
                "optimizer": "nesterov",
                "lr": LR,
                "weight_decay": 5e-4,
                "label_smoothing": 0.1,
                "warmup": 0.2,
                "schedule": "onecycle",
            },
        }
    )
    empty = TensorSet({"image": x[:0]}, y[:0], ids=x[:0, 0, 0, 0].numpy())
    train = TensorSet({"image": x}, y, ids=y.numpy())
    model = ("convnet", {}, make_model(0, mean, std))
    result = fit(TASKS.get("classify").trainable(spec, None, train=train, val=empty, model=model), spec, verbose=False)
    return result.examples_per_second


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc malloc at its defaults")
    args = ap.parse_args()
    if not args.no_malloc_tuning:
        tune_malloc()  # both loops run in this process, so both get the same allocator settings
    torch.set_num_threads(torch.get_num_threads())
    x, y = mnist_tensors("train")
    x, y = x[: args.images], y[: args.images]
    mean, std = x.float().mean().item(), x.float().std().item()
    plain_loop(x[:2048], y[:2048], mean, std)  # warm-up both paths
    sw2_loop(x[:2048], y[:2048], mean, std)
    rows = []
    for r in range(args.rounds):
        p = plain_loop(x, y, mean, std)
        s = sw2_loop(x, y, mean, std)
        rows.append((p, s, s / p))
        print(f"round {r + 1}: plain {p:,.0f} img/s   sw2 {s:,.0f} img/s   ratio {s / p:.3f}", flush=True)
    print(
        f"median: plain {statistics.median(r[0] for r in rows):,.0f} img/s, sw2 "
        f"{statistics.median(r[1] for r in rows):,.0f} img/s, sw2/plain ratio "
        f"{statistics.median(r[2] for r in rows):.3f} (threads {torch.get_num_threads()})"
    )


if __name__ == "__main__":
    main()
