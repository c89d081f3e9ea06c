"""Shared helpers for benchmarks: where the data sets are, loaded as tensors."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sw2.data import idx

ROOT = Path(__file__).resolve().parent.parent


def datasets_dir() -> Path:
    """SW2_DATASETS, else ../shared/datasets beside the project."""
    return Path(os.environ.get("SW2_DATASETS", ROOT.parent / "shared" / "datasets"))


def mnist_tensors(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    folder = datasets_dir() / "mnist"
    pair = idx.load_pair(folder, "train" if split == "train" else "t10k")
    if pair is None:
        raise SystemExit(f"MNIST not found in {folder}; set SW2_DATASETS")
    return torch.from_numpy(pair[0].copy()), torch.from_numpy(pair[1])


def markdown_table(rows: list[dict], columns: dict[str, str]) -> str:
    """Rows as a Markdown table: `columns` maps each row key to its header."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k in columns) + " |")
    return "\n".join(lines)


def machine() -> str:
    """The CPU model, its flags of interest, torch's version and the threads: printed by every benchmark."""
    from sw2.engine.hardware import cores, cpu_info

    model, flags = cpu_info()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "sve")
    shown = ", ".join(f for f in wanted if f in flags) or "none of avx2/avx512f/avx512_bf16/amx_bf16"
    return f"{model}; flags: {shown}; torch {torch.__version__}; {cores()} cores, {torch.get_num_threads()} threads"
