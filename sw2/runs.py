"""What every training run shares, for the one pipeline in sw2.api (every task): the run key that guards
`--resume`, the engine's loop with its checkpoint folder, the training summary, the fingerprint, and writing
the bundle atomically."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from sw2 import __version__
from sw2.bundle import save, write_atomic
from sw2.engine import FitResult, fit
from sw2.engine.callbacks import Callback
from sw2.engine.hardware import cpu_model
from sw2.engine.trainable import Trainable
from sw2.evaluation import plots
from sw2.outputs import checkpoint_dir
from sw2.spec import Spec

UNKEYED = ("tracking",)  # where a run is logged is no part of what it trains
KEYED_WHEN_SET = (("data", "sep"), ("data", "encoding"), ("data", "split", "by"), ("data", "split", "group"))


def run_key(spec: Spec, data_print: str) -> str:
    """Which spec and data a checkpoint belongs to (taken before `lr: auto` is resolved): the resolved spec
    but its UNKEYED sections, and the fields of KEYED_WHEN_SET only where set, so that a checkpoint of an sw2
    without them, or of another tracking URI, still resumes."""
    raw = spec.model_dump(mode="json")
    for section in UNKEYED:
        raw.pop(section, None)
    for *parents, last in KEYED_WHEN_SET:
        part = raw
        for p in parents:
            part = part.get(p) or {}
        if last in part and part[last] is None:
            del part[last]
    return hashlib.sha256((yaml.safe_dump(raw, sort_keys=False) + data_print).encode()).hexdigest()


def train_model(
    trainable: Trainable,
    spec: Spec,
    out: Path,
    key: str,
    *,
    resume: bool,
    verbose: bool,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """The engine's loop, checkpointing beside the bundle-to-be (`--resume` continues from there)."""
    ckpt = checkpoint_dir(out)
    if not resume:
        shutil.rmtree(ckpt, ignore_errors=True)
    return fit(
        trainable,
        spec,
        checkpoint_dir=ckpt,
        resume=resume,
        run_key=key,
        log_dir=ckpt / "tensorboard",
        verbose=verbose,
        callbacks=callbacks,
    )


def training_summary(result: FitResult, prepare_seconds: float) -> dict[str, Any]:
    return {
        "seconds": result.train_seconds,
        "examples_per_second": result.examples_per_second,
        "epochs": len(result.history),  # epochs begun
        "epochs_done": round(result.epochs_done, 3),
        "stopped": result.stopped,
        "best_epoch": result.best_epoch,
        "prepare_seconds": round(prepare_seconds, 3),
        "threads": result.extra["threads"]["threads"],  # at the end; how it was chosen in thread_choice
        "thread_choice": result.extra["threads"],
        "precision": result.extra["precision"]["precision"],
        "precision_choice": result.extra["precision"]["how"],
        "cpu": cpu_model(),
        "length": result.extra["length"],
        **({"fitted": result.extra["direct"]} if "direct" in result.extra else {}),  # what a direct fit chose
    }


def fingerprint(data_print: str, model_name: str) -> dict[str, Any]:
    return {
        "data_sha256": data_print,
        "sw2": __version__,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model_name,
    }


def write_bundle(
    out: Path,
    result: FitResult,
    arch: dict[str, Any],
    encoder: Any,
    spec: Spec,
    metrics: dict[str, Any],
    fingerprint: dict[str, Any],
    metric: str,
    extra: Callable[[Path], None],
) -> Path:
    """The bundle's common files (`arch`: model.json, `sw2.bundle.architecture`), then `extra(folder)` for the
    task's own, all atomically; the checkpoint folder goes once the bundle is in place."""
    ckpt = checkpoint_dir(out)

    def fill(folder: Path) -> None:
        save(folder, result.model, arch, encoder, spec, metrics, result.history, fingerprint)
        plots.curves(result.history, metric, folder / "curves.png")
        if (ckpt / "tensorboard").exists():
            shutil.copytree(ckpt / "tensorboard", folder / "tensorboard")
        extra(folder)

    path = write_atomic(out, fill)
    shutil.rmtree(ckpt, ignore_errors=True)
    return path
