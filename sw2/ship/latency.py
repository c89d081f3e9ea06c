"""How fast a runner answers: latency at batch 1 (p50 and p95 of single-example calls, after a warm-up) and
throughput at batch 64 (examples a second over whole batches), with the thread counts it ran on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Runner = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@dataclass
class Speed:
    p50_ms: float
    p95_ms: float
    throughput: float  # examples a second at batch `batch`
    calls: int
    batch: int


def _take(inputs: dict[str, torch.Tensor], start: int, size: int) -> dict[str, torch.Tensor]:
    """`size` examples from `start`, wrapping around the end (a small test split still fills a batch)."""
    n = len(next(iter(inputs.values())))
    idx = torch.arange(start, start + size) % n
    return {k: v[idx].contiguous() for k, v in inputs.items()}


def measure(
    run: Runner, inputs: dict[str, torch.Tensor], calls: int = 200, batch: int = 64, seconds: float = 2.0
) -> Speed:
    """`calls` single-example calls (each a different example) after 10 of warm-up, then batches of `batch`
    for at least 5 batches and `seconds` (after two warm-up batches)."""
    singles = [_take(inputs, i, 1) for i in range(calls + 10)]
    for x in singles[:10]:
        run(x)
    times = []
    for x in singles[10:]:
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    batches = [_take(inputs, i * batch, batch) for i in range(8)]
    for x in batches[:2]:
        run(x)
    done, t0 = 0, time.perf_counter()
    while done < 5 * batch or time.perf_counter() - t0 < seconds:
        run(batches[(done // batch) % len(batches)])
        done += batch
    elapsed = time.perf_counter() - t0
    ms = np.array(times) * 1000
    return Speed(float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), done / elapsed, calls, batch)
