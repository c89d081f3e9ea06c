"""Where and how fast to run: device, threads, precision, and glibc malloc tuning."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch

from sw2.engine.threads import ThreadTuner, candidates, last_choice
from sw2.spec import TrainSpec


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name (what a speed measurement holds for, e.g. 'AMD EPYC 7B13') and its flags (x86
    `flags`, ARM `Features`), from /proc/cpuinfo; elsewhere what `platform` says and no flags."""
    model, flags = "", frozenset[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = frozenset(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "unknown CPU", flags


def cpu_model() -> str:
    return cpu_info()[0]


def device_for(train: TrainSpec) -> torch.device:
    if train.device == "cuda" or (train.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def thread_tuner(train: TrainSpec, device: torch.device) -> ThreadTuner | None:
    """The CPU's thread count for training: `train.threads` pins it (no tuner), and so does `deterministic`
    (all cores unless given: float sums split across threads round differently with another count), else a
    ThreadTuner times real steps to choose it (on a GPU the CPU threads barely matter: all cores, no tuner)."""
    if train.threads or train.deterministic or device.type != "cpu":
        torch.set_num_threads(train.threads or cores())
        return None
    return ThreadTuner(candidates(cores()), first=last_choice())


@contextmanager
def determinism(train: TrainSpec, device: torch.device) -> Iterator[None]:
    """With `train.deterministic`, deterministic algorithms only (an op that has none raises), for the
    duration of the block; the process's settings are put back after it. On CUDA, cuBLAS also needs
    CUBLAS_WORKSPACE_CONFIG before its first use: set here unless the user set it, which is only in time
    where this run is the first CUDA work of the process."""
    if not train.deterministic:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


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
