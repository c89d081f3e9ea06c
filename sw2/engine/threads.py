"""The CPU thread count, chosen by timing real training steps, and chosen again when the step time drifts.

All cores is fastest on an idle machine, but not when another process keeps one core busy: PyTorch's
OpenMP threads meet at a barrier after every op, and a thread whose core is taken makes the others wait
for its time slice (seen here: 3-4x slower with 2 threads, while 1 thread ran at its usual speed). No
flag or core count tells which case holds, and it changes while training runs, so the tuner measures:
it runs a few steps with each candidate count, keeps the fastest, watches the step time, and measures
again when the time drifts or, now and then, in case the other load has gone.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

_last_choice: list[int | None] = [None]  # the last probe's choice in this process: the load is the machine's


def last_choice() -> int | None:
    """What the last probe in this process chose (a later run starts from it), or None."""
    return _last_choice[0]


def forget() -> None:
    """The next tuner probes from scratch (the pre-flight measures the machine as it is now)."""
    _last_choice[0] = None


@contextmanager
def at_last_choice() -> Iterator[None]:
    """Work outside a training loop (the pre-flight's own steps, models that fit themselves, the report) at the
    count the last probe chose, the process's count restored after: at all cores, a small mlp's steps took 15-20x
    the CPU time of one thread where other processes held the cores (OpenMP threads spin at every op's barrier;
    the pre-flight's overfit check on fair: 3.6 s of CPU against 0.08 s)."""
    before, chosen = torch.get_num_threads(), _last_choice[0]
    if chosen is not None:
        torch.set_num_threads(chosen)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def candidates(cores: int) -> list[int]:
    """All cores first (the usual winner), then one fewer and one: the counts worth timing."""
    return list(dict.fromkeys(c for c in (cores, cores - 1, 1) if c >= 1))


class ThreadTuner:
    """Call `step()` once before each training step and `pause()` after work that is not a step
    (validation, checkpoints). The thread count it sets is the fastest measured; `record()` says what was
    measured, for metrics.json.

    A probe times up to `probe_steps` steps of each candidate (the first step after a switch only warms
    the thread pool up) and drops a candidate at its first step slower than `reject` x the best so far:
    under load the wrong count can be 100x slower, so a probe must not insist. Probes come back when the
    median of the last steps drifts by more than `drift` from the chosen count's measured time, and
    otherwise after `recheck_seconds`; never sooner than what the last probe cost divided by `overhead`,
    so that probing costs at most that share of the training time. Given `first` (what an earlier probe in
    this process chose: the pre-flight's, for training), it starts there without a probe; the first steps'
    times are its baseline, and drift or the re-check timer probe as usual.
    """

    def __init__(
        self,
        choices: list[int],
        first: int | None = None,
        probe_steps: int = 5,
        drift: float = 0.3,
        reject: float = 1.5,
        recheck_seconds: float = 30.0,
        overhead: float = 0.02,
        clock: Callable[[], float] = time.perf_counter,
        set_threads: Callable[[int], None] = torch.set_num_threads,
    ) -> None:
        self.choices, self.probe_steps, self.drift, self.reject = choices, probe_steps, drift, reject
        self.recheck_seconds, self.overhead = recheck_seconds, overhead
        self.clock, self.set_threads = clock, set_threads
        resumed = first in choices  # an earlier run in this process probed: start from its choice, unprobed
        if resumed:
            choices = [first] + [c for c in choices if c != first]
        self.choices = choices
        self.threads = choices[0]
        self.set_threads(self.threads)
        self.baseline = 0.0  # seconds a step with `threads`, as measured by the last probe
        self.recent: deque[float] = deque(maxlen=8)
        self.probes: list[dict[str, Any]] = []  # every probe: when and what each count measured
        self._queue: list[int] = list(choices) if len(choices) > 1 and not resumed else []
        self._times: dict[int, list[float]] = {}
        self._drop = 2  # step times still to drop: the first steps (lazy set-up), and the first after a switch
        self._last: float | None = None
        self._start = self._probe_start = clock()
        self._probe_steps_taken = 0
        self._earliest = self._next_check = float("inf")

    def pause(self) -> None:
        """The time until the next step() is not a step's."""
        self._last = None

    def step(self) -> None:
        now = self.clock()
        last, self._last = self._last, now
        if last is None or len(self.choices) < 2:
            return
        seconds = now - last
        if self._queue:
            self._measure(seconds, now)
            return
        if not self.baseline:  # started from an earlier choice: its step time here is the baseline
            self._set_baseline(seconds, now)
            return
        self.recent.append(seconds)
        if now < self._earliest:
            return
        full = len(self.recent) == self.recent.maxlen
        drifted = full and abs(statistics.median(self.recent) - self.baseline) > self.drift * self.baseline
        if drifted or now >= self._next_check:
            self._queue = [self.threads] + [c for c in self.choices if c != self.threads]  # no switch first
            self._times, self._probe_start, self._probe_steps_taken = {}, now, 0

    def _set_baseline(self, seconds: float, now: float) -> None:
        """The median of the first full window of steps, the warm-up steps dropped; re-checks as after a probe."""
        if self._drop:
            self._drop -= 1
            return
        self.recent.append(seconds)
        if len(self.recent) == self.recent.maxlen:
            self.baseline = statistics.median(self.recent)
            self.recent.clear()
            self._earliest, self._next_check = now, now + self.recheck_seconds

    def _best_so_far(self) -> float:
        done = [statistics.median(t) for c, t in self._times.items() if c != self._queue[0]]
        return min(done, default=float("inf"))

    def _measure(self, seconds: float, now: float) -> None:
        current = self._queue[0]
        self._probe_steps_taken += 1
        hopeless = seconds > self.reject * self._best_so_far()
        if self._drop:
            self._drop -= 1
            if hopeless:  # even a warm-up step this slow settles it
                self._times[current] = [seconds]
                self._next(now)
            return
        self._times.setdefault(current, []).append(seconds)
        if hopeless or len(self._times[current]) >= self.probe_steps:
            self._next(now)

    def _next(self, now: float) -> None:
        """The next candidate, or, after the last, the choice."""
        self._queue.pop(0)
        if self._queue:
            self._switch(self._queue[0])
            return
        measured = {c: statistics.median(t) for c, t in self._times.items()}
        best = min(measured, key=measured.__getitem__)
        _last_choice[0] = best
        self._switch(best)
        self.baseline = measured[best]
        self.recent.clear()
        cost = max(0.0, (now - self._probe_start) - self._probe_steps_taken * measured[best])
        self._earliest = now + cost / self.overhead
        self._next_check = now + max(self.recheck_seconds, cost / self.overhead)
        self.probes.append(
            {
                "at_seconds": round(now - self._start, 3),
                "ms_per_step": {str(c): round(1000 * t, 3) for c, t in measured.items()},
                "chosen": best,
            }
        )

    def _switch(self, threads: int) -> None:
        if threads != self.threads:
            self.threads = threads
            self.set_threads(threads)
            self._drop = 1

    def record(self) -> dict[str, Any]:
        return {"threads": self.threads, "choices": self.choices, "probes": self.probes}
