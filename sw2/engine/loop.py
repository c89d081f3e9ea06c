"""The training loop: one for every task. Read this file to know what training does.

`fit` trains a `Trainable` (sw2/engine/trainable.py), which a task builds from the spec and its data: the
named networks, the step (what one batch does to the weights: sw2/engine/step.py), the stream of batches an
epoch yields and how a checkpoint is judged (`evaluate`). `fit` owns the rest: the device, the time budget,
the schedule's progress, the thread count, the precision, checkpoints and exact resume, and the callbacks
(sw2/engine/callbacks/, one file each: the spec's from `callbacks_for`, the progress bar, then the caller's).
Step, stream and callbacks see where training stands through one `Context` (sw2/engine/context.py).

An epoch, top to bottom: `on_epoch_begin`; per batch the stream yields, `on_batch_begin`, the step,
`on_batch_end`; then `evaluate` (the supervised one: one view, no test-time augmentation, fp32 whatever the
training precision), `on_epoch_end`, and a checkpoint (the modules, the step's and the stream's state, each
callback's state, the random states, the history) so that `resume` continues where the run stopped:
bit-exact with `deterministic` (or pinned threads) and no time budget. With a time budget the lr schedule
follows the clock: a resumed run keeps the time already spent (the budget is not restarted), the data order
and every state, but its lr at each later step follows its own clock, so it matches an uninterrupted run only
up to that. A step and callbacks that never read `ctx.progress` (a GAN's step with its own constant lr)
resume bit-exactly under a budget too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from sw2.engine import checkpoint, hardware, precision
from sw2.engine.callbacks import Callback, by_name, callbacks_for
from sw2.engine.callbacks.progress import ProgressBar
from sw2.engine.context import Context
from sw2.engine.direct import fit_direct
from sw2.engine.length import plan
from sw2.engine.optim import lr_factor
from sw2.engine.result import FitResult
from sw2.engine.trainable import Trainable, nothing_held_out
from sw2.errors import UserError
from sw2.spec import Spec


def fit(
    trainable: Trainable,
    spec: Spec,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    run_key: str = "",
    log_dir: Path | None = None,
    verbose: bool = True,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train `trainable` as `spec.train` says, judging it with its `evaluate` after each epoch. The process's
    thread count, random state and determinism settings are as they were when it returns. `callbacks` run
    after the spec's and the progress bar."""
    if trainable.direct is not None:  # trees, a solved linear model
        return fit_direct(trainable, spec)
    threads_before = torch.get_num_threads()
    device = hardware.device_for(spec.train)
    gpus = [device.index or 0] if device.type == "cuda" else []
    try:
        with hardware.determinism(spec.train, device), torch.random.fork_rng(devices=gpus):
            run = _Run(trainable, spec, device, checkpoint_dir, run_key)
            shown = [ProgressBar(trainable.metric, log_dir, verbose)] if verbose or log_dir is not None else []
            return run.fit(resume, shown + (callbacks or []))
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
        self, trainable: Trainable, spec: Spec, device: torch.device, checkpoint_dir: Path | None, run_key: str
    ) -> None:
        self.t, self.spec, self.device = trainable, spec, device
        self.model, self.step, self.batches = trainable.model, trainable.step, trainable.batches
        self.checkpoint_dir, self.run_key = checkpoint_dir, run_key
        self.elapsed = 0.0  # seconds of training and validation, across resumes, at the last epoch's end

    def fit(self, resume: bool, callbacks: list[Callback]) -> FitResult:
        cfg, stream = self.spec.train, self.batches
        hardware.tune_malloc()
        # None: threads pinned by train.threads or deterministic, or not a CPU
        self.tuner = hardware.thread_tuner(cfg, self.device)
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        for module in self.t.modules.values():
            module.to(self.device)
        stream.to(self.device)
        self.step.to(self.device)
        self.callbacks = callbacks_for(cfg, self.model) + callbacks
        n, bs = stream.examples, stream.batch_size
        shape = precision.shape_key(self.model, stream.shapes(), bs)
        choice = precision.choose(cfg, self.device, shape)  # training steps only: validation is fp32
        length = plan(cfg, n)
        steps_per_epoch = stream.steps_per_epoch
        total = max(1, math.ceil(length.epochs * steps_per_epoch))
        total += (-total) % cfg.accumulate  # end on a whole optimizer step
        ctx = self.ctx = Context(self.device, choice.dtype, cfg.accumulate, bs, n, total, generator)
        ctx.reorder = self._reorder
        for cb in self.callbacks:
            cb.on_train_begin(ctx)
        if resume and self.checkpoint_dir is not None:
            self._restore(self.checkpoint_dir)
        self.budget, self.start = length.time_budget, time.perf_counter() - self.elapsed
        while ctx.step < total and ctx.stop is None:
            self._end_epoch(*self._epoch())
        for cb in self.callbacks:
            cb.on_train_end(ctx)
        tuner = self.tuner
        threads = tuner.record() if tuner is not None else {"threads": torch.get_num_threads(), "pinned": True}
        for module in self.t.modules.values():
            module.cpu()
        return FitResult(
            extra={"threads": threads, "precision": choice.to_json(), "shape": shape, "length": length.to_json()},
            model=self.model,
            history=ctx.history,
            stopped=ctx.stop or "completed",
            train_seconds=self.elapsed,
            examples_per_second=ctx.step * bs / max(self.elapsed, 1e-9),
            best_epoch=ctx.best_epoch,
            epochs_done=ctx.step / steps_per_epoch,
        )

    def _reorder(self, order: torch.Tensor) -> torch.Tensor:
        """An epoch's permutation as the callbacks leave it (`epoch_order`: easy-example pruning)."""
        for cb in self.callbacks:
            order = cb.epoch_order(order, self.ctx)
        return order

    def _progress(self) -> float:
        """The share of training done: of the steps, or of the time budget if that runs out first."""
        done = self.ctx.step / self.ctx.total_steps
        return max(done, (time.perf_counter() - self.start) / self.budget) if self.budget else done

    def _epoch(self) -> tuple[torch.Tensor, int]:
        """One epoch's batches: the sum of their losses, and their number."""
        ctx = self.ctx
        ctx.epoch += 1
        for module in self.t.modules.values():
            module.train()
        ctx.progress = self._progress()
        for cb in self.callbacks:
            cb.on_epoch_begin(ctx)
        loss_sum, seen = torch.zeros((), device=self.device), 0
        for batch, target, idx in self.batches.epoch(ctx):
            if self.tuner is not None:
                self.tuner.step()
            ctx.progress = self._progress()
            for cb in self.callbacks:
                cb.on_batch_begin(ctx)
            loss = self.step(batch, target, idx, ctx)
            ctx.step += 1
            for cb in self.callbacks:
                cb.on_batch_end(ctx, loss)
            loss_sum += loss
            seen += 1
            if ctx.step >= ctx.total_steps:
                break
            if self.budget and time.perf_counter() - self.start > self.budget:
                ctx.stop = "time_budget"
                break
        if seen == 0:  # nothing would ever advance: e.g. a callback kept fewer examples than one batch
            raise UserError(f"training: an epoch yielded no batch of {ctx.batch_size}: fewer examples than a batch")
        return loss_sum, seen

    def _end_epoch(self, loss_sum: torch.Tensor, seen: int) -> None:
        """The epoch's history row, evaluation, `on_epoch_end` and the checkpoint."""
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
        if self.tuner is not None and (self.t.evaluate is not nothing_held_out or self.checkpoint_dir is not None):
            self.tuner.pause()  # evaluation and the checkpoint are not steps
        row.update(self.t.evaluate(self.device))
        ctx.history.append(row)
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
                "modules": {name: m.state_dict() for name, m in self.t.modules.items()},
                "step": self.step.state_dict(),
                "batches": self.batches.state_dict(),
                "callbacks": {name: cb.state_dict() for name, cb in by_name(self.callbacks).items()},
                "generator": ctx.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "state": {
                    "epoch": ctx.epoch,
                    "step": ctx.step,
                    "elapsed": self.elapsed,
                    "history": ctx.history,
                    "stop": ctx.stop,
                },  # fmt: skip
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
        ctx, modules = self.ctx, self.t.modules
        assert ctx.generator is not None
        if saved["modules"].keys() != modules.keys():
            raise KeyError("modules")
        for name, module in modules.items():
            module.load_state_dict(saved["modules"][name])
        self.step.load_state_dict(saved["step"])
        self.batches.load_state_dict(saved.get("batches", {}))  # a checkpoint of an earlier sw2 has no stream state
        for name, cb in by_name(self.callbacks).items():  # a callback this run lacks leaves its state unread
            if name in saved["callbacks"] or cb.state_dict():  # a stateless one (the progress bar) may be new
                cb.load_state_dict(saved["callbacks"][name])
        ctx.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if self.device.type == "cuda" and saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        state = saved["state"]
        ctx.epoch, ctx.step, ctx.history = int(state["epoch"]), int(state["step"]), list(state["history"])
        stop = state.get("stop")  # why the run ended there, if it did (a checkpoint of an earlier sw2 has none)
        ctx.stop = str(stop) if stop is not None else None
        self.elapsed = float(state["elapsed"])
