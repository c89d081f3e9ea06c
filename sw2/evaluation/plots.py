"""PNG plots for the bundle: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

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
