"""PNG plots for the bundle and its report: training curves, confusion matrix, lr sweep, image grids,
reliability diagram, saliency maps. Each writes to a path or a binary buffer (for inline report images).

Labels in any script: each plot draws with matplotlib's own font first and, for a character it lacks (Chinese
class names, Japanese tokens), the CJK fonts installed here (matplotlib >= 3.6 falls back glyph by glyph).
Where no installed font has a character, one warning says what to install instead of matplotlib's warning per
missing glyph.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from sw2 import log

Target = Path | BinaryIO
F = TypeVar("F", bound=Callable[..., Any])
# fonts that draw Chinese, Japanese and Korean (Linux, Windows, macOS), tried in this order after the default
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK KR", "Source Han Sans SC", "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "Microsoft YaHei", "SimHei", "PingFang SC",
    "Hiragino Sans GB", "Heiti SC", "Malgun Gothic", "Apple SD Gothic Neo",
)  # fmt: skip
INSTALL_FONT = (
    "install a CJK font (Debian/Ubuntu: apt-get install fonts-noto-cjk; or any of Noto Sans CJK, WenQuanYi, "
    "SimHei, Microsoft YaHei, PingFang), then delete matplotlib's font cache (~/.cache/matplotlib)"
)
_missing_told = False  # the missing-glyph warning is given once a process


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported on first use (half a second that every
    `sw2` command would otherwise pay at start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@functools.cache
def _families() -> tuple[str, ...]:
    """The font families a plot asks for: matplotlib's configured ones, then the CJK fonts installed here."""
    from matplotlib import font_manager, rcParams

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return (*rcParams["font.family"], *(f for f in CJK_FONTS if f in installed))


def _any_script(draw: F) -> F:
    """`draw` with the CJK fonts as fallbacks, and one warning naming what to install for characters that no
    installed font has (matplotlib's other warnings passed on as they came)."""

    @functools.wraps(draw)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        global _missing_told
        plt = _pyplot()
        with plt.rc_context({"font.family": list(_families())}), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = draw(*args, **kwargs)
        missing = [w for w in caught if "missing from font" in str(w.message)]
        for w in caught:
            if w not in missing:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if missing and not _missing_told:
            _missing_told = True
            log.warning(f"plots: no font here draws some characters of the labels ({missing[0].message}); "
                        f"they show as boxes: {INSTALL_FONT}")  # fmt: skip
        return result

    return wrapped  # type: ignore[return-value]


def _save(fig: Any, path: Target) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    _pyplot().close(fig)


@_any_script
def curves(history: list[dict[str, Any]], metric: str, path: Target) -> None:
    epochs = [r["epoch"] for r in history]
    fig, (a, b) = _pyplot().subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    if any("val_loss" in r for r in history):
        a.plot(epochs, [r.get("val_loss") for r in history], marker="o", label="validation")
        b.plot(epochs, [r.get("val_metric") for r in history], marker="o", color="C2")
    a.set(title="loss", xlabel="epoch")
    a.legend()
    b.set(title=f"validation {metric}", xlabel="epoch")
    _save(fig, path)


@_any_script
def confusion(matrix: list[list[int]], classes: list[Any], path: Target) -> None:
    k = len(classes)
    size = min(4 + 0.45 * k, 20)
    fig, ax = _pyplot().subplots(figsize=(size, size))
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
    _save(fig, path)


@_any_script
def lr_sweep(lrs: list[float], losses: list[float], suggestion: float, path: Target) -> None:
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.axvline(suggestion, color="C3", linestyle="--", label=f"suggestion {suggestion:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title="lr finder")
    ax.legend()
    _save(fig, path)


@_any_script
def image_grid(images: np.ndarray, labels: list[str], path: Target, title: str, cols: int = 8) -> None:
    """uint8 images N x C x H x W in a grid, each under its label: one mosaic drawn once (fast for many images)."""
    n, c, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    band, gap = max(4, round(0.4 * h)), max(1, w // 10)  # a band above each tile for its label
    tile_h, tile_w = h + band, w + gap
    mosaic = np.full((rows * tile_h, cols * tile_w, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        rgb = np.repeat(img, 3, axis=0) if c == 1 else img[:3]
        mosaic[r * tile_h + band : r * tile_h + band + h, col * tile_w : col * tile_w + w] = rgb.transpose(1, 2, 0)
    fig, ax = _pyplot().subplots(figsize=(cols * 1.3, rows * 1.5 + 0.4))
    ax.imshow(mosaic, interpolation="nearest")
    for i, label in enumerate(labels[:n]):
        r, col = divmod(i, cols)
        ax.text(col * tile_w + w / 2, r * tile_h + band - 1, label, ha="center", va="bottom", fontsize=7)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def _shown(img: np.ndarray) -> np.ndarray:
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


@_any_script
def reliability(cal: dict[str, Any], path: Target) -> None:
    """Accuracy against confidence per bin (a calibrated model lies on the diagonal), with bin counts."""
    bins = len(cal["count"])
    centres = (np.arange(bins) + 0.5) / bins
    used = np.array(cal["count"]) > 0
    fig, (a, b) = _pyplot().subplots(1, 2, figsize=(9, 4))
    a.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    a.bar(centres[used], np.array(cal["accuracy"])[used], width=1 / bins, alpha=0.7, edgecolor="k", label="accuracy")
    a.plot(np.array(cal["confidence"])[used], np.array(cal["accuracy"])[used], marker="o", color="C3")
    a.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"reliability (ECE {cal['ece']:.4f})")
    a.legend(loc="upper left")
    b.bar(centres, cal["count"], width=1 / bins, edgecolor="k")
    b.set(xlim=(0, 1), yscale="log", xlabel="confidence", ylabel="test examples", title="examples per bin")
    _save(fig, path)


@_any_script
def saliency_grid(images: np.ndarray, maps: np.ndarray, labels: list[str], path: Target) -> None:
    """Each uint8 image above its saliency map (integrated gradients)."""
    n = len(images)
    fig, axes = _pyplot().subplots(2, n, figsize=(n * 1.5, 3.4), squeeze=False)
    for i in range(n):
        img = _shown(images[i])
        axes[0, i].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        axes[0, i].set_title(labels[i], fontsize=7)
        axes[1, i].imshow(maps[i], cmap="inferno")
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle("integrated gradients: top, the image (true / predicted); bottom, |attribution|", fontsize=9)
    _save(fig, path)


@_any_script
def bars(names: list[str], values: list[float], path: Target, title: str) -> None:
    order = np.argsort(values)[-25:]
    fig, ax = _pyplot().subplots(figsize=(7, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order], [values[i] for i in order])
    ax.set(title=title)
    _save(fig, path)


@_any_script
def scatter(truth: np.ndarray, pred: np.ndarray, path: Target) -> None:
    """Predicted against true values (regression); the diagonal is a perfect model."""
    fig, ax = _pyplot().subplots(figsize=(5, 5))
    ax.scatter(truth, pred, s=8, alpha=0.6)
    lo, hi = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--")
    ax.set(xlabel="true", ylabel="predicted", title="test predictions")
    _save(fig, path)


@_any_script
def line(y: list[float], path: Target, title: str, xlabel: str, ylabel: str) -> None:
    """One curve of `y` against its index."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(np.arange(len(y)), y)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    _save(fig, path)
