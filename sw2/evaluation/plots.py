"""PNG plots for the bundle: training curves, the confusion matrix, the lr finder's sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curves(history: list[dict[str, Any]], metric: str, path: Path) -> None:
    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    if any("val_loss" in r for r in history):
        a.plot(epochs, [r.get("val_loss") for r in history], marker="o", label="validation")
        b.plot(epochs, [r.get("val_metric") for r in history], marker="o", color="C2")
    a.set(title="loss", xlabel="epoch")
    a.legend()
    b.set(title=f"validation {metric}", xlabel="epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion(matrix: list[list[int]], classes: list[Any], path: Path) -> None:
    k = len(classes)
    size = min(4 + 0.45 * k, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    labels = [str(c) for c in classes]
    ax.set_xticks(range(k), labels, rotation=90 if k > 10 else 45)
    ax.set_yticks(range(k), labels)
    if k <= 30:
        top = max(max(r) for r in matrix) or 1
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(matrix[i][j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if matrix[i][j] > top / 2 else "black",
                )
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def lr_sweep(lrs: list[float], losses: list[float], suggestion: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.axvline(suggestion, color="C3", linestyle="--", label=f"suggestion {suggestion:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title="lr finder")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def image_grid(images: np.ndarray, labels: list[str], path: Path, title: str, cols: int = 8) -> None:
    """uint8 images N x C x H x W in a grid, each titled with its label."""
    rows = (len(images) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, label in zip(axes.ravel(), images, labels):
        shown = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        ax.imshow(shown, cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=255)
        ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
