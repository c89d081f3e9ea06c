"""Training precision: plain fp32, or bf16 autocast where it pays.

`precision: auto` takes bf16 on CUDA. On a CPU it takes bf16 only where the CPU's flags promise native bf16
(AMX or AVX512-BF16: elsewhere bf16 is emulated and several times slower) and timing real training steps
in both precisions found bf16 faster: flags promise, a CPU and a model decide (a small model may run
faster in fp32 even on AMX). The pre-flight times the steps (`decide`); the verdict is cached per CPU
model, torch version and model shape in the user's cache folder, so a later run of the same model on the
same machine reuses it. Without a timing (pre-flight skipped on a new machine) the flags decide, and
metrics.json says so.

Validation, early stopping's choice and every reported figure are computed in fp32 whatever the training
precision, so that they compare like with like.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sw2.engine.hardware import cpu_info, cpu_model
from sw2.files import cache_dir, write_file
from sw2.spec import TrainSpec

MARGIN = 0.05  # bf16 must be this much faster than fp32 to be chosen: a tie keeps the exact precision


@dataclass(frozen=True)
class Choice:
    dtype: torch.dtype | None  # None: plain fp32
    how: str  # why, in words: recorded in metrics.json and printed by the pre-flight

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else "bf16"

    def to_json(self) -> dict[str, Any]:
        return {"precision": self.name, "how": self.how}


def cpu_has_native_bf16() -> bool:
    """True where the CPU's flags promise native bf16 matrices (AMX or AVX512-BF16)."""
    return not cpu_info()[1].isdisjoint({"amx_bf16", "avx512_bf16"})


def shape_key(model: nn.Module, inputs: dict[str, torch.Tensor], batch_size: int) -> str:
    """What the speed of a step depends on besides the machine: the parameters' and a batch's shapes."""
    parts = [type(model).__name__, str(batch_size)]
    parts += [f"{n}:{tuple(p.shape)}:{p.requires_grad}" for n, p in model.named_parameters()]
    parts += [f"{k}:{tuple(v.shape[1:])}:{v.dtype}" for k, v in sorted(inputs.items())]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_file() -> Path:
    """precision.json in the user's cache folder (`sw2.files.cache_dir`)."""
    return cache_dir() / "precision.json"


def _entry_key(shape: str) -> str:
    return f"{cpu_model()} | torch {torch.__version__} | {shape}"


def _read_cache() -> dict[str, Any]:
    try:
        found = json.loads(cache_file().read_text())
    except (OSError, ValueError):  # absent or damaged: time again
        return {}
    return found if isinstance(found, dict) else {}


def remembered(shape: str) -> dict[str, Any] | None:
    """The cached timing of this model on this CPU and torch, or None (absent, or not as sw2 writes it)."""
    entry = _read_cache().get(_entry_key(shape))
    if not isinstance(entry, dict) or entry.get("precision") not in ("fp32", "bf16"):
        return None
    ms = entry.get("ms_per_step")
    ok = isinstance(ms, dict) and all(isinstance(ms.get(k), int | float) for k in ("fp32", "bf16"))
    return entry if ok else None


def remember(shape: str, entry: dict[str, Any]) -> None:
    """Best effort: a read-only home folder costs a timing next run, not the run."""
    cached = _read_cache()
    cached[_entry_key(shape)] = entry
    try:
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        write_file(cache_file(), json.dumps(cached, indent=1))
    except OSError:
        pass


def _timed(entry: dict[str, Any], cached: bool) -> Choice:
    ms = entry["ms_per_step"]
    how = f"auto: timed bf16 {ms['bf16']:.1f} ms/step against fp32 {ms['fp32']:.1f}" + (" (cached)" if cached else "")
    return Choice(torch.bfloat16 if entry["precision"] == "bf16" else None, how)


def _untimed(train: TrainSpec, device: torch.device) -> Choice | None:
    """The choice where no timing has a say (the spec, CUDA, a CPU without native bf16), else None."""
    if train.precision != "auto":
        return Choice(torch.bfloat16 if train.precision == "bf16" else None, f"spec: precision: {train.precision}")
    if device.type == "cuda":
        return Choice(torch.bfloat16, "auto: bf16 on CUDA")
    if not cpu_has_native_bf16():
        return Choice(None, "auto: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)")
    return None


def choose(train: TrainSpec, device: torch.device, shape: str) -> Choice:
    """The precision training uses, and why."""
    fixed = _untimed(train, device)
    if fixed is not None:
        return fixed
    entry = remembered(shape)
    if entry is not None:
        return _timed(entry, cached=True)
    return Choice(torch.bfloat16, "auto: the CPU's flags promise native bf16 (not timed: no pre-flight on this model)")


def decide(
    train: TrainSpec, device: torch.device, shape: str, seconds_per_step: Callable[[torch.dtype | None], float]
) -> Choice:
    """`choose`, after timing both precisions with `seconds_per_step(dtype)` where the choice rests on the
    flags alone (a CPU that promises native bf16, no cached timing): the faster wins, bf16 by `MARGIN`."""
    fixed = _untimed(train, device)
    if fixed is not None:
        return fixed
    entry = remembered(shape)
    if entry is not None:
        return _timed(entry, cached=True)
    ms = {"fp32": 1000 * seconds_per_step(None), "bf16": 1000 * seconds_per_step(torch.bfloat16)}
    entry = {"precision": "bf16" if ms["bf16"] < (1 - MARGIN) * ms["fp32"] else "fp32", "ms_per_step": ms}
    remember(shape, entry)
    return _timed(entry, cached=False)
