"""Training checkpoints: everything needed to continue a run exactly, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

NAME = "checkpoint.pt"


def save(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{NAME}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, folder / NAME)


def load(folder: Path) -> dict[str, Any] | None:
    path = folder / NAME
    if not path.exists():
        return None
    return torch.load(path, weights_only=True)  # tensors, numbers and dicts only: nothing is unpickled
