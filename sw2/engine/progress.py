"""What the user sees while training: a rich progress bar, epoch lines, and TensorBoard scalars."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class Reporter:
    def __init__(self, total_steps: int, batch_size: int, log_dir: Path | None, verbose: bool) -> None:
        self.verbose, self.batch_size = verbose, batch_size
        self.console = Console(stderr=True)
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))
        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[metric]}  {task.fields[ips]:,.0f} ex/s"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not verbose,
            transient=False,
        )
        self.task = self.bar.add_task("train", total=total_steps, epoch="1", loss=float("nan"), metric="", ips=0.0)
        self._last, self._last_step = time.perf_counter(), 0
        self.bar.start()

    def step(self, step: int, epoch: int, loss: float) -> None:
        now = time.perf_counter()
        if now - self._last < 0.25:
            return
        ips = (step - self._last_step) * self.batch_size / (now - self._last)
        self._last, self._last_step = now, step
        self.bar.update(self.task, completed=step, epoch=str(epoch), loss=loss, ips=ips)
        if self.writer is not None:
            self.writer.add_scalar("train/loss_step", loss, step)

    def epoch(self, row: dict[str, Any], metric: str) -> None:
        shown = f"val {metric} {row['val_metric']:.4f}" if row.get("val_metric") is not None else ""
        self.bar.update(self.task, epoch=str(row["epoch"]), metric=shown)
        if self.verbose:
            line = f"epoch {row['epoch']:>3}  train loss {row['train_loss']:.4f}"
            if row.get("val_loss") is not None:
                line += f"  val loss {row['val_loss']:.4f}  val {metric} {row['val_metric']:.4f}"
            self.bar.console.print(line + f"  lr {row['lr']:.3g}  {row['time']:.1f}s")
        if self.writer is not None:
            for k, v in row.items():
                if isinstance(v, int | float) and k not in ("epoch", "step"):
                    self.writer.add_scalar(k, v, row["step"])

    def close(self, step: int) -> None:
        self.bar.update(self.task, completed=step)
        self.bar.stop()
        if self.writer is not None:
            self.writer.close()
