"""Training checkpoints: everything needed to continue a run exactly, written atomically."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from sw2.errors import UserError
from sw2.outputs import CHECKPOINT

NAME = CHECKPOINT
# what every checkpoint holds
KEYS = ("run_key", "modules", "step", "callbacks", "generator", "torch_rng", "state")  # and "batches" (a stream's)


def save(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{NAME}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, folder / NAME)


def load(folder: Path) -> dict[str, Any] | None:
    """The checkpoint in `folder` (None if there is none); anything else there is a one-line error."""
    path = folder / NAME
    if not path.exists():
        return None
    fix = f"delete the folder {folder} or train without --resume"
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle protocol before refusing it
            warnings.simplefilter("ignore")
            state = torch.load(
                path, weights_only=True, map_location="cpu"
            )  # tensors, numbers and dicts only: nothing is unpickled
    except Exception as err:  # a pickle of other objects, garbage, a truncated file
        raise UserError(
            f"{path}: not a readable sw2 checkpoint (objects other than tensors and numbers, or damaged: "
            f"{type(err).__name__}); {fix}"
        ) from None
    if not isinstance(state, dict) or not all(k in state for k in KEYS):
        raise UserError(f"{path}: not an sw2 checkpoint (keys missing); {fix}")
    return state
