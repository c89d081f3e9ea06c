"""Gradient health over the first training steps: NaN/Inf, exploding or vanishing gradient norms per
layer, and the share of dead ReLU units (never positive on a batch)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from sw2.engine.context import Context
from sw2.engine.hardware import device_for
from sw2.engine.trainable import Batch
from sw2.preflight.recipe import Data, scaled, subset
from sw2.preflight.verdict import Verdict
from sw2.spec import Spec
from sw2.tasks import Task


@dataclass
class _Seen:
    norms: dict[str, list[float]]  # each weight's gradient norm, per step
    dead: dict[str, float]  # each ReLU's share of units never positive on the last batch
    loss: float  # the last step's


def _watch(model: nn.Module, layers: dict[str, nn.Parameter], seen: _Seen) -> list[RemovableHandle]:
    """Hooks that record each ReLU's dead share and each weight's gradient norm once its gradient is complete."""

    def relu(name: str):
        def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
            alive = (out > 0).flatten(2).any(2) if out.ndim > 2 else out > 0  # per channel / unit
            seen.dead[name] = 1 - alive.any(0).float().mean().item()

        return hook

    def grad(name: str):
        def hook(q: torch.Tensor) -> None:
            seen.norms[name].append(q.grad.norm().item() if q.grad is not None else 0.0)

        return hook

    handles = [m.register_forward_hook(relu(n)) for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    return handles + [q.register_post_accumulate_grad_hook(grad(n)) for n, q in layers.items()]


def _train(spec: Spec, p: Data, task: Task, steps: int, examples: bool) -> _Seen:
    """`steps` steps of the task's trainable (its own step on its own stream, fp32) on the spec's device at the
    spec's peak lr (the early steps at their worst); gradient norms before any clipping, 0 for a weight a step
    left without. A task that learns from `examples` trains on a slice of them, in batches of at most 128
    examples (or as many targets)."""
    cfg = spec.train.model_copy(update={"schedule": "constant", "warmup": 0.0})
    if examples:
        cfg = cfg.model_copy(update={"batch_size": min(cfg.batch_size, scaled(p.train, 128), len(p.train))})
        data = subset(p.train, min(len(p.train), steps * cfg.batch_size), spec.train.seed)
        trainable = task.trainable(spec.model_copy(update={"train": cfg}), p, train=data, init_on=p.train)
    else:
        trainable = task.trainable(spec.model_copy(update={"train": cfg}), p)
    model, stream, device = trainable.model, trainable.batches, device_for(spec.train)
    model.to(device).train()
    stream.to(device)
    trainable.step.to(device)
    layers = {n: q for n, q in model.named_parameters() if q.requires_grad and q.ndim >= 2 and q.numel()}  # 0 x n: none
    seen = _Seen({n: [] for n in layers}, {}, math.nan)
    handles = _watch(model, layers, seen)
    gen = torch.Generator().manual_seed(spec.train.seed)
    ctx = Context(device, batch_size=stream.batch_size, examples=stream.examples, total_steps=steps, generator=gen)

    def batches() -> Iterator[Batch]:
        for ctx.epoch in range(1, steps + 1):  # at most `steps` epochs: a stream of empty epochs ends too
            yield from stream.epoch(ctx)

    try:
        for batch, target, idx in itertools.islice(batches(), steps):
            seen.loss = trainable.step(batch, target, idx, ctx).item()
            ctx.step += 1
            for vs in seen.norms.values():
                vs += [0.0] * (ctx.step - len(vs))
    finally:
        for h in handles:
            h.remove()
    return seen


def gradient_health(spec: Spec, p: Data, task: Task, examples: bool = True, steps: int = 6) -> list[Verdict]:
    seen = _train(spec, p, task, steps, examples)
    norms, dead = seen.norms, seen.dead
    flat = [v for vs in norms.values() for v in vs]
    if not all(math.isfinite(v) for v in flat) or not math.isfinite(seen.loss):
        return [
            Verdict(
                "gradient health",
                "FAIL",
                f"NaN or Inf in the loss or gradients within {steps} steps; lower train.lr or check the inputs for NaN",
            )
        ]
    typical = {n: sorted(vs)[len(vs) // 2] for n, vs in norms.items()}
    mid = sorted(typical.values())[len(typical) // 2] if typical else 0.0
    big = {n: v for n, v in typical.items() if v > 100 * mid and v > 1.0}
    small = {n: v for n, v in typical.items() if v < 1e-4 * mid and mid > 1e-6}
    out = []
    if big or small:
        which = ", ".join(
            [f"{n} exploding ({v:.2g})" for n, v in big.items()]
            + [f"{n} vanishing ({v:.2g})" for n, v in small.items()]
        )
        out.append(
            Verdict(
                "gradient health",
                "WARN",
                f"median layer gradient norm {mid:.2g}; {which}; check the init, normalisation and lr",
            )
        )
    else:
        lo, hi = min(typical.values(), default=0), max(typical.values(), default=0)
        out.append(
            Verdict("gradient health", "PASS", f"finite; layer gradient norms {lo:.2g} to {hi:.2g} over {steps} steps")
        )
    if dead:
        worst = max(dead, key=dead.get)
        share = dead[worst]
        status = "WARN" if share > 0.5 else "PASS"
        tail = "; lower the lr or use GELU" if status == "WARN" else ""
        out.append(
            Verdict(
                "dead ReLUs", status, f"largest share of units never active on a batch: {share:.0%} ({worst}){tail}"
            )
        )
    return out
