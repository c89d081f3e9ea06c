"""The training loop: one for every task. Read this file to know what training does.

Data stays in memory as tensors; each epoch draws a permutation from a seeded generator (less some
well-learned examples with `prune_easy`) and slices batches from it. Validation runs after each epoch
(one view, no test-time augmentation, fp32 whatever the training precision); a checkpoint is written after
each epoch so that `resume` continues where the run stopped: bit-exact with `deterministic` (or pinned
threads) and no time budget. With a time budget the lr schedule follows the clock: a resumed run keeps the
time already spent (the budget is not restarted), the data order and every state, but its lr at each later
step follows its own clock, so it matches an uninterrupted run only up to that.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sw2 import log
from sw2.data.dataset import TensorSet
from sw2.engine import checkpoint, hardware, precision
from sw2.engine.augment import alternating_flips, augment, augment_text, is_active, text_active
from sw2.engine.length import plan
from sw2.engine.lookahead import Lookahead
from sw2.engine.optim import layer_groups, lr_factor, make_optimizer
from sw2.engine.predict import predict
from sw2.engine.progress import Reporter
from sw2.engine.prune import EasyPruner
from sw2.errors import UserError
from sw2.models.base import Model
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


@dataclass
class _State:
    """Everything that changes during training and must survive a restart."""

    epoch: int = 0
    step: int = 0
    elapsed: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None


def _monitor(spec: Spec, row: dict[str, Any]) -> float | None:
    """The early-stopping score of an epoch, higher is better."""
    es = spec.train.early_stopping
    if es is None or row.get("val_loss") is None:
        return None
    return -row["val_loss"] if es.monitor == "val_loss" else row["val_metric"]


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
    task: Task,
    train: TensorSet,
    val: TensorSet,
    spec: Spec,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    run_key: str = "",
    log_dir: Path | None = None,
    verbose: bool = True,
) -> FitResult:
    """Train `model` on `train` as `spec.train` says, validating on `val` after each epoch. The process's
    thread count, random state and determinism settings are as they were when it returns."""
    threads_before = torch.get_num_threads()
    device = hardware.device_for(spec.train)
    gpus = [device.index or 0] if device.type == "cuda" else []
    try:
        with hardware.determinism(spec.train, device), torch.random.fork_rng(devices=gpus):
            return _fit(model, task, train, val, spec, device, checkpoint_dir, resume, run_key, log_dir, verbose)
    except RuntimeError as err:
        if spec.train.deterministic and "deterministic" in str(err):  # an op with no deterministic version
            first = str(err).strip().splitlines()[0]
            raise UserError(f"train.deterministic: {first}; set deterministic: false, or train on the CPU") from None
        raise
    finally:
        torch.set_num_threads(threads_before)


def _fit(
    model: nn.Module,
    task: Task,
    train: TensorSet,
    val: TensorSet,
    spec: Spec,
    device: torch.device,
    checkpoint_dir: Path | None,
    resume: bool,
    run_key: str,
    log_dir: Path | None,
    verbose: bool,
) -> FitResult:
    cfg, aug = spec.train, spec.augment
    hardware.tune_malloc()
    tuner = hardware.thread_tuner(cfg, device)  # None: pinned by train.threads or deterministic, or not a CPU
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device)
    set_progress = model.set_progress if isinstance(model, Model) else None  # what trains may change with time
    opt = make_optimizer(model, cfg)
    stack = layer_groups(model) if cfg.unfreeze else []  # gradual unfreezing, top group first
    if (cfg.unfreeze or cfg.layer_lr_decay < 1) and not layer_groups(model):
        log.warning("train.unfreeze and train.layer_lr_decay apply to pretrained models (minilm, mobilenet); ignored")
    # overlapping windows (a language model's strided views) stay where they are: copied whole they would
    # take `max_tokens` times the memory; their batches are gathered there and moved
    inputs = {k: v.to(device) if v.is_contiguous() else v for k, v in train.inputs.items()}
    target = train.target.to(device) if train.target.is_contiguous() else train.target
    augmenting = is_active(aug) and "image" in inputs
    augmenting_text = text_active(aug) and "text" in inputs
    flip_bits = alternating_flips(len(train), cfg.seed).to(device) if aug.flip == "alternate" else None

    n = len(train)
    bs = min(cfg.batch_size, n)
    shape = precision.shape_key(model, train.inputs, bs)
    choice = precision.choose(cfg, device, shape)
    amp = choice.dtype  # training steps only: validation is fp32
    length = plan(cfg, n)
    budget = length.time_budget
    steps_per_epoch = max(1, n // bs)  # the last partial batch is dropped (a fresh permutation each epoch)
    total_steps = max(1, math.ceil(length.epochs * steps_per_epoch))
    total_steps += (-total_steps) % cfg.accumulate  # end on a whole optimizer step

    st = _State()
    slow = Lookahead(model) if cfg.lookahead else None
    pruner = EasyPruner(n, cfg.prune_easy, device) if cfg.prune_easy else None
    saved = checkpoint.load(checkpoint_dir) if (resume and checkpoint_dir is not None) else None
    if saved is not None:
        if saved["run_key"] != run_key:
            raise UserError(
                f"{checkpoint_dir}: checkpoint is from another spec, data or sw2 version; delete it or drop --resume"
            )
        try:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            gen.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            st = _State(**saved["state"])
            if slow is not None:
                slow.slow = saved["lookahead"]
            if pruner is not None:
                pruner.scores = saved["prune_scores"].to(device)
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as err:  # tampered with
            raise UserError(
                f"{checkpoint_dir}: the checkpoint does not fit this run ({type(err).__name__}); delete the folder "
                f"or train without --resume"
            ) from None

    reporter = Reporter(total_steps, bs, log_dir, verbose)
    stopped = "completed"
    start = time.perf_counter() - st.elapsed

    def progress_now() -> float:
        """The share of training done: of the steps, or of the time budget if that runs out first."""
        done = st.step / total_steps
        return max(done, (time.perf_counter() - start) / budget) if budget else done

    while st.step < total_steps and stopped == "completed":
        st.epoch += 1
        model.train()
        perm = torch.randperm(n, generator=gen)
        if pruner is not None:
            perm = pruner.epoch(perm, gen, progress_now() < cfg.prune_easy_until, bs * cfg.accumulate)
        perm = perm.to(device)
        steps = min(len(perm) // bs, total_steps - st.step)  # a pruned epoch keeps whole batches
        loss_sum, seen = torch.zeros((), device=device), 0
        for i in range(steps):
            if tuner is not None:
                tuner.step()
            idx = perm[i * bs : (i + 1) * bs]
            batch = {k: v[idx.to(v.device)].to(device, non_blocking=True) for k, v in inputs.items()}
            if augmenting:
                flips = None if flip_bits is None else flip_bits[idx] ^ bool(st.epoch % 2)
                batch["image"] = augment(batch["image"], aug, gen, flips)
            if augmenting_text:
                batch["text"] = augment_text(batch["text"], aug, gen)
            progress = progress_now()
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg, progress) * group["lr_scale"]
            if set_progress is not None and st.step % cfg.accumulate == 0:  # what trains changes between updates
                set_progress(progress)
            if stack:
                learning = min(len(stack), 1 + int(progress / cfg.unfreeze * len(stack)))
                for depth, params in enumerate(stack):
                    for p in params:
                        p.requires_grad_(depth >= len(stack) - learning)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                out, y = model(batch), target[idx.to(target.device)].to(device)
                if pruner is None:
                    loss = task.loss(out, y, cfg.label_smoothing)
                else:
                    loss = pruner.loss(task.example_losses(out, y, cfg.label_smoothing), idx)
            (loss / cfg.accumulate).backward()
            st.step += 1
            if st.step % cfg.accumulate == 0:
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
                if slow is not None:
                    slow.step(model, st.step // cfg.accumulate, progress)
            loss_sum += loss.detach()
            seen += 1
            if i % 8 == 0:  # reading the loss syncs a GPU, so not every step
                reporter.step(st.step, st.epoch, loss_sum.item() / seen)
            if budget and time.perf_counter() - start > budget:
                stopped = "time_budget"
                break
        st.elapsed = time.perf_counter() - start
        row: dict[str, Any] = {
            "epoch": st.epoch,
            "step": st.step,
            "train_loss": loss_sum.item() / max(seen, 1),
            "lr": cfg.lr * lr_factor(cfg, progress),  # the base lr (groups scale it)
            "time": round(st.elapsed, 3),
            "threads": torch.get_num_threads(),
        }
        if tuner is not None and (len(val) or checkpoint_dir is not None):
            tuner.pause()  # validation and the checkpoint are not steps
        if len(val):  # one view: TTA is for the final scores
            row["val_loss"], row["val_metric"] = validate(model, task, val, device=device)  # fp32, as reported
        st.history.append(row)
        reporter.epoch(row, task.metric)

        score = _monitor(spec, row)
        if score is not None:
            es = spec.train.early_stopping
            assert es is not None
            if score > st.best_score + es.min_delta:
                st.best_score, st.best_epoch, st.bad_epochs = score, st.epoch, 0
                st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif not stack or st.step >= cfg.unfreeze * total_steps:  # no patience lost while still unfreezing
                st.bad_epochs += 1
                if st.bad_epochs >= es.patience and stopped == "completed":
                    stopped = "early_stopping"
        if checkpoint_dir is not None:
            checkpoint.save(
                checkpoint_dir,
                {
                    "run_key": run_key,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "state": vars(st),
                    "lookahead": slow.slow if slow is not None else None,
                    "prune_scores": pruner.scores.cpu() if pruner is not None else None,
                },
            )
    reporter.close(st.step)
    if slow is not None:
        slow.finish(model)

    if st.best_state is not None and st.best_epoch != st.epoch:
        model.load_state_dict(st.best_state)  # restore the best weights
    train_seconds = st.elapsed  # wall time of training and validation, across resumes
    threads = tuner.record() if tuner is not None else {"threads": torch.get_num_threads(), "pinned": True}
    return FitResult(
        extra={"threads": threads, "precision": choice.to_json(), "shape": shape, "length": length.to_json()},
        model=model.cpu(),
        history=st.history,
        stopped=stopped,
        train_seconds=train_seconds,
        examples_per_second=st.step * bs / max(train_seconds, 1e-9),
        best_epoch=st.best_epoch or None,
        epochs_done=st.step / steps_per_epoch,
    )
