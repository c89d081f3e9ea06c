"""What the user sees while training, as a callback: a line per epoch (an "epoch" event of sw2.log: plain text,
or the history row as JSON), a rich progress bar only where a person watches (a terminal, `log.interactive`, or
a notebook; piped or redirected output gets whole lines, no live display), and TensorBoard scalars (the running
training loss and every number of each epoch's history row). `fit` adds it where the run is verbose or has a
log folder; a caller may pass its own instead."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sw2 import log
from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context


class ProgressBar(Callback):
    def __init__(self, metric: str = "", log_dir: Path | None = None, verbose: bool = True) -> None:
        self.metric, self.log_dir, self.verbose = metric, log_dir, verbose
        self.writer: Any = None

    def scalar(self, name: str, value: float, step: int) -> None:
        """A TensorBoard scalar; the event file is made at the first (not before a resumed run's checkpoint is
        found readable)."""
        if self.log_dir is None:
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.log_dir))
        self.writer.add_scalar(name, value, step)

    def on_train_begin(self, ctx: Context) -> None:
        self.bar: Progress | None = None  # shown from the first epoch on: a refused --resume shows nothing

    def _show(self, ctx: Context) -> Progress:
        if self.bar is not None:
            return self.bar
        console = Console()  # stdout, where the epoch lines go: rich shows them above the bar
        watched = log.interactive() or (console.is_jupyter and not log.json_output())
        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[metric]}  {task.fields[ips]:,.0f} ex/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not (self.verbose and watched),
            transient=False,
        )
        self.task = self.bar.add_task("train", total=ctx.total_steps, epoch="1", loss=float("nan"), metric="", ips=0.0)
        self._last, self._last_step = time.perf_counter(), ctx.step
        self.bar.start()
        return self.bar

    def on_epoch_begin(self, ctx: Context) -> None:
        self._show(ctx)
        self.loss_sum, self.seen = torch.zeros((), device=ctx.device), 0

    def on_batch_end(self, ctx: Context, loss: torch.Tensor) -> None:
        self.loss_sum += loss
        self.seen += 1
        if self.seen % 8 != 1:  # reading the loss syncs a GPU, so not every step
            return
        now = time.perf_counter()
        if now - self._last < 0.25:
            return
        ips = (ctx.step - self._last_step) * ctx.batch_size / (now - self._last)
        self._last, self._last_step = now, ctx.step
        mean = self.loss_sum.item() / self.seen
        self._show(ctx).update(self.task, completed=ctx.step, epoch=str(ctx.epoch), loss=mean, ips=ips)
        self.scalar("train/loss_step", mean, ctx.step)

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        metric = self.metric or "metric"
        shown = f"val {metric} {row['val_metric']:.4f}" if row.get("val_metric") is not None else ""
        bar = self._show(ctx)
        bar.update(self.task, completed=ctx.step, epoch=str(row["epoch"]), loss=row["train_loss"], metric=shown)
        if self.verbose:
            line = f"epoch {row['epoch']:>3}  train loss {row['train_loss']:.4f}"
            if row.get("val_loss") is not None:
                line += f"  val loss {row['val_loss']:.4f}"
            if row.get("val_metric") is not None:
                line += f"  val {metric} {row['val_metric']:.4f}"
            line += f"  lr {row['lr']:.3g}  {row['time']:.1f}s"
            fields = {k: v for k, v in row.items() if k != "time"}  # an event's "time" is when it happened
            log.event("epoch", line, **fields, seconds=row["time"], metric=self.metric or None)
        for k, v in row.items():
            if isinstance(v, int | float) and k not in ("epoch", "step"):
                self.scalar(k, v, row["step"])

    def on_train_end(self, ctx: Context) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=ctx.step)
            self.bar.stop()
        if self.writer is not None:
            self.writer.close()
