"""Where and how fast to run: device, threads, precision, and glibc malloc tuning."""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache

import torch

from sw2.engine.threads import ThreadTuner, candidates, last_choice
from sw2.spec import TrainSpec


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 matrices natively (AMX or AVX512-BF16); elsewhere bf16 is emulated
    and several times slower than fp32."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def device_for(train: TrainSpec) -> torch.device:
    if train.device == "cuda" or (train.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def autocast_dtype(train: TrainSpec, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where it is native and asked for (or auto); None means plain fp32."""
    if train.precision == "fp32":
        return None
    if train.precision == "bf16":
        return torch.bfloat16
    native = device.type == "cuda" or cpu_has_native_bf16()
    return torch.bfloat16 if native else None


def set_threads(train: TrainSpec) -> None:
    torch.set_num_threads(train.threads or cores())


def thread_tuner(train: TrainSpec, device: torch.device) -> ThreadTuner | None:
    """The CPU's thread count for training: `train.threads` pins it (no tuner), else a ThreadTuner times real
    steps to choose it (on a GPU the CPU threads barely matter: all cores, no tuner)."""
    if train.threads or device.type != "cpu":
        torch.set_num_threads(train.threads or cores())
        return None
    return ThreadTuner(candidates(cores()), first=last_choice())


@cache
def tune_malloc() -> bool:
    """Keep glibc from returning big freed blocks to the OS after every step.

    Each training step frees and re-allocates the same large activation buffers; with glibc's default
    thresholds those go back to the OS and come back as page faults ("malloc page-fault storms"), which
    made repeated runs here swing by up to 25%. Raising the mmap and trim thresholds keeps them in the
    heap. Same effect as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_; skipped where they are set.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
    return ok and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
