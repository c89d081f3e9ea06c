"""The training loop: one for every task. Read this file to know what training does.

`fit` owns the loop: the device, the data order, the time budget, validation, checkpoints and exact resume,
the thread count, the seed and the progress bar. What one batch does to the weights is the step's
(sw2/engine/step.py: `SupervisedStep` by default: the lr schedule, autocast, the task's loss, gradient
accumulation and clipping, the optimizer update; a GAN passes its own `TrainStep`). Everything optional is a
callback (sw2/engine/callbacks/, one file each, built from the spec by `callbacks_for`): the model's progress
hook, gradual unfreezing, easy-example pruning, lookahead and early stopping. Step and callbacks see where
training stands through one `Context` (sw2/engine/context.py).

An epoch, top to bottom: a permutation drawn from a seeded generator (callbacks may leave examples out:
`prune_easy`), then per batch: gather and augment it, `on_batch_begin`, the step, `on_batch_end`; then
validation (one view, no test-time augmentation, fp32 whatever the training precision), `on_epoch_end`, and a
checkpoint (the step's modules and state, each callback's state, the random states, the history) so that
`resume` continues where the run stopped: bit-exact with `deterministic` (or pinned threads) and no time
budget. With a time budget the lr schedule follows the clock: a resumed run keeps the time already spent (the
budget is not restarted), the data order and every state, but its lr at each later step follows its own
clock, so it matches an uninterrupted run only up to that. A step and callbacks that never read
`ctx.progress` (a GAN's step with its own constant lr) resume bit-exactly under a budget too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.engine import checkpoint, hardware, precision
from sw2.engine.batches import Batches
from sw2.engine.callbacks import Callback, by_name, callbacks_for
from sw2.engine.context import Context
from sw2.engine.direct import fit_direct
from sw2.engine.length import plan
from sw2.engine.optim import lr_factor
from sw2.engine.predict import predict
from sw2.engine.progress import Reporter
from sw2.engine.step import SupervisedStep, TrainStep
from sw2.errors import UserError
from sw2.spec import Spec
from sw2.tasks import Task


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict[str, Any]]
    stopped: str  # completed | early_stopping | time_budget
    train_seconds: float
    examples_per_second: float
    best_epoch: int | None = None
    epochs_done: float = 0.0  # steps / full-data steps per epoch: fractional where a time budget stops
    # mid-epoch; with prune_easy the epochs are shorter, and more are begun than done
    extra: dict[str, Any] = field(default_factory=dict)


def validate(
    model: nn.Module,
    task: Task,
    val: TensorSet,
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
) -> tuple[float, float]:
    """(loss, metric) on `val`, a chunk of `task.chunk` examples at a time (language models' outputs are
    too large to hold for the whole split)."""
    step = task.chunk or max(1, len(val))
    loss = metric = 0.0
    for i in range(0, len(val), step):
        inputs = {k: v[i : i + step] for k, v in val.inputs.items()}
        out, y = predict(model, inputs, device=device, autocast=autocast), val.target[i : i + step]
        loss += task.loss(out, y).item() * len(y) / len(val)
        metric += task.score(out, y) * len(y) / len(val)
    return loss, metric


def fit(
    model: nn.Module,
    task: Task | None,
    train: TensorSet,
    val: TensorSet,
    spec: Spec,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    run_key: str = "",
    log_dir: Path | None = None,
    verbose: bool = True,
    step: TrainStep | None = None,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train `model` on `train` as `spec.train` says, validating on `val` after each epoch. The process's
    thread count, random state and determinism settings are as they were when it returns.

    `step` replaces the default `SupervisedStep(model, task, spec.train)`; `model` is then what the run
    returns and the spec's callbacks act on (the step's module, or a container of its modules), and `task`
    may be None where `val` is empty. `callbacks` run after the spec's."""
    if getattr(model, "direct", False) and task is not None and step is None:  # trees, a solved linear model
        return fit_direct(model, task, train, val, spec)
    threads_before = torch.get_num_threads()
    device = hardware.device_for(spec.train)
    gpus = [device.index or 0] if device.type == "cuda" else []
    try:
        with hardware.determinism(spec.train, device), torch.random.fork_rng(devices=gpus):
            run = _Run(model, task, val, spec, device, checkpoint_dir, run_key)
            return run.fit(train, resume, log_dir, verbose, step, callbacks or [])
    except RuntimeError as err:
        if spec.train.deterministic and "deterministic" in str(err):  # an op with no deterministic version
            first = str(err).strip().splitlines()[0]
            raise UserError(f"train.deterministic: {first}; set deterministic: false, or train on the CPU") from None
        raise
    finally:
        torch.set_num_threads(threads_before)


class _Run:
    """One run of `fit`: what its epochs share."""

    def __init__(
        self,
        model: nn.Module,
        task: Task | None,
        val: TensorSet,
        spec: Spec,
        device: torch.device,
        checkpoint_dir: Path | None,
        run_key: str,
    ) -> None:
        if task is None and len(val):
            raise ValueError("fit: validation data needs a task to score it")
        self.model, self.task, self.val, self.spec, self.device = model, task, val, spec, device
        self.checkpoint_dir, self.run_key = checkpoint_dir, run_key
        self.elapsed = 0.0  # seconds of training and validation, across resumes, at the last epoch's end

    def fit(
        self,
        train: TensorSet,
        resume: bool,
        log_dir: Path | None,
        verbose: bool,
        step: TrainStep | None,
        callbacks: list[Callback],
    ) -> FitResult:
        cfg = self.spec.train
        hardware.tune_malloc()
        # None: threads pinned by train.threads or deterministic, or not a CPU
        self.tuner = hardware.thread_tuner(cfg, self.device)
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        self.model.to(self.device)
        if step is None:
            if self.task is None:
                raise ValueError("fit: the default step (SupervisedStep) needs a task")
            step = SupervisedStep(self.model, self.task, cfg)
        self.step = step.to(self.device)
        self.callbacks = callbacks_for(cfg, self.model) + callbacks
        self.batches = Batches(train, self.spec.augment, cfg.seed, self.device)
        n, bs = len(train), min(cfg.batch_size, len(train))
        shape = precision.shape_key(self.model, train.inputs, bs)
        choice = precision.choose(cfg, self.device, shape)  # training steps only: validation is fp32
        length = plan(cfg, n)
        steps_per_epoch = max(1, n // bs)  # the last partial batch is dropped (a fresh permutation each epoch)
        total = max(1, math.ceil(length.epochs * steps_per_epoch))
        total += (-total) % cfg.accumulate  # end on a whole optimizer step
        ctx = self.ctx = Context(self.device, choice.dtype, cfg.accumulate, bs, n, total, generator)
        for cb in self.callbacks:
            cb.on_train_begin(ctx)
        if resume and self.checkpoint_dir is not None:
            self._restore(self.checkpoint_dir)
        self.budget, self.start = length.time_budget, time.perf_counter() - self.elapsed
        self.reporter = Reporter(total, bs, log_dir, verbose)
        while ctx.step < total and ctx.stop is None:
            self._end_epoch(*self._epoch())
        self.reporter.close(ctx.step)
        for cb in self.callbacks:
            cb.on_train_end(ctx)
        tuner = self.tuner
        threads = tuner.record() if tuner is not None else {"threads": torch.get_num_threads(), "pinned": True}
        return FitResult(
            extra={"threads": threads, "precision": choice.to_json(), "shape": shape, "length": length.to_json()},
            model=self.model.cpu(),
            history=ctx.history,
            stopped=ctx.stop or "completed",
            train_seconds=self.elapsed,
            examples_per_second=ctx.step * bs / max(self.elapsed, 1e-9),
            best_epoch=ctx.best_epoch,
            epochs_done=ctx.step / steps_per_epoch,
        )

    def _progress(self) -> float:
        """The share of training done: of the steps, or of the time budget if that runs out first."""
        done = self.ctx.step / self.ctx.total_steps
        return max(done, (time.perf_counter() - self.start) / self.budget) if self.budget else done

    def _epoch(self) -> tuple[torch.Tensor, int]:
        """One epoch's batches: the sum of their losses, and their number."""
        ctx, bs = self.ctx, self.ctx.batch_size
        ctx.epoch += 1
        self.model.train()
        self.step.train()
        ctx.progress = self._progress()
        for cb in self.callbacks:
            cb.on_epoch_begin(ctx)
        order = torch.randperm(ctx.examples, generator=ctx.generator)
        for cb in self.callbacks:
            order = cb.epoch_order(order, ctx)
        order = order.to(self.device)
        steps = min(len(order) // bs, ctx.total_steps - ctx.step)  # a pruned epoch keeps whole batches
        if steps == 0:  # nothing would ever advance: a callback kept fewer examples than one batch
            raise UserError(f"training: an epoch kept {len(order)} examples, fewer than a batch of {bs}")
        loss_sum, seen = torch.zeros((), device=self.device), 0
        for i in range(steps):
            if self.tuner is not None:
                self.tuner.step()
            idx = order[i * bs : (i + 1) * bs]
            batch, target = self.batches.take(idx, ctx.epoch, ctx.generator)
            ctx.progress = self._progress()
            for cb in self.callbacks:
                cb.on_batch_begin(ctx)
            loss = self.step(batch, target, idx, ctx)
            ctx.step += 1
            for cb in self.callbacks:
                cb.on_batch_end(ctx, loss)
            loss_sum += loss
            seen += 1
            if i % 8 == 0:  # reading the loss syncs a GPU, so not every step
                self.reporter.step(ctx.step, ctx.epoch, loss_sum.item() / seen)
            if self.budget and time.perf_counter() - self.start > self.budget:
                ctx.stop = "time_budget"
                break
        return loss_sum, seen

    def _end_epoch(self, loss_sum: torch.Tensor, seen: int) -> None:
        """The epoch's history row, validation, `on_epoch_end` and the checkpoint."""
        ctx, cfg = self.ctx, self.spec.train
        self.elapsed = time.perf_counter() - self.start
        row: dict[str, Any] = {
            "epoch": ctx.epoch,
            "step": ctx.step,
            "train_loss": loss_sum.item() / max(seen, 1),
            "lr": cfg.lr * lr_factor(cfg, ctx.progress),  # the base lr (groups scale it)
            "time": round(self.elapsed, 3),
            "threads": torch.get_num_threads(),
        }
        if self.tuner is not None and (len(self.val) or self.checkpoint_dir is not None):
            self.tuner.pause()  # validation and the checkpoint are not steps
        if self.task is not None and len(self.val):  # one view: TTA is for the final scores
            row["val_loss"], row["val_metric"] = validate(self.model, self.task, self.val, device=self.device)
        ctx.history.append(row)
        self.reporter.epoch(row, self.task.metric if self.task is not None else "")
        for cb in self.callbacks:
            cb.on_epoch_end(ctx, row)
        if self.checkpoint_dir is not None:
            self._save(self.checkpoint_dir)

    def _save(self, folder: Path) -> None:
        ctx = self.ctx
        assert ctx.generator is not None
        checkpoint.save(
            folder,
            {
                "run_key": self.run_key,
                "modules": {name: m.state_dict() for name, m in self.step.modules().items()},
                "step": self.step.state_dict(),
                "callbacks": {name: cb.state_dict() for name, cb in by_name(self.callbacks).items()},
                "generator": ctx.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "state": {"epoch": ctx.epoch, "step": ctx.step, "elapsed": self.elapsed, "history": ctx.history},
            },
        )

    def _restore(self, folder: Path) -> None:
        """Continue from the checkpoint in `folder`, if there is one."""
        saved = checkpoint.load(folder)
        if saved is None:
            return
        if saved["run_key"] != self.run_key:
            raise UserError(
                f"{folder}: checkpoint is from another spec, data or sw2 version; delete it or drop --resume"
            )
        try:
            self._load(saved)
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as err:  # tampered with
            raise UserError(
                f"{folder}: the checkpoint does not fit this run ({type(err).__name__}); delete the folder "
                f"or train without --resume"
            ) from None

    def _load(self, saved: dict[str, Any]) -> None:
        ctx, modules = self.ctx, self.step.modules()
        assert ctx.generator is not None
        if saved["modules"].keys() != modules.keys():
            raise KeyError("modules")
        for name, module in modules.items():
            module.load_state_dict(saved["modules"][name])
        self.step.load_state_dict(saved["step"])
        for name, cb in by_name(self.callbacks).items():  # a callback this run lacks leaves its state unread
            cb.load_state_dict(saved["callbacks"][name])
        ctx.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if self.device.type == "cuda" and saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        state = saved["state"]
        ctx.epoch, ctx.step, ctx.history = int(state["epoch"]), int(state["step"]), list(state["history"])
        self.elapsed = float(state["elapsed"])
