"""The thread tuner with a stub clock: it keeps the fastest count and follows load as it comes and goes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sw2.engine.threads import ThreadTuner, candidates

QUIET = {2: 0.010, 1: 0.016}  # seconds a step: all cores win on an idle machine
LOADED = {2: 0.040, 1: 0.017}  # one core busy elsewhere: the barrier waits make 2 threads slow


def run(seconds_per_step: Callable[[float, int], float], steps: int, **options) -> tuple[ThreadTuner, float, list]:
    """Drive a tuner for `steps` steps; returns it, the total time and the thread count at each step."""
    clock, threads = [0.0], [0]

    def set_threads(n: int) -> None:
        threads[0] = n

    tuner = ThreadTuner([2, 1], clock=lambda: clock[0], set_threads=set_threads, **options)
    used = []
    for _ in range(steps):
        tuner.step()
        used.append(threads[0])
        clock[0] += seconds_per_step(clock[0], threads[0])
    return tuner, clock[0], used


def test_candidates():
    assert candidates(2) == [2, 1] and candidates(1) == [1] and candidates(8) == [8, 7, 1]


def test_quiet_machine_keeps_all_cores_and_records_what_it_measured():
    tuner, total, used = run(lambda t, n: QUIET[n], 7000)
    assert tuner.threads == 2 and used[-1] == 2
    assert total < 1.03 * 7000 * QUIET[2], "probing costs under 3% of the time"
    first = tuner.probes[0]
    assert first["chosen"] == 2 and first["ms_per_step"] == {"2": 10.0, "1": 16.0}
    assert tuner.record()["threads"] == 2 and len(tuner.probes) >= 2, "re-checked now and then"


def test_busy_core_moves_to_one_thread_and_back_when_the_load_goes():
    def load(t: float, n: int) -> float:
        return (LOADED if 5.0 <= t < 20.0 else QUIET)[n]

    tuner, total, used = run(load, 3000)
    loaded = [u for i, u in enumerate(used) if 600 < i < 1300]  # well inside the loaded stretch (t = 5..20 s)
    assert loaded.count(1) > 0.9 * len(loaded), "drift set off a probe, and one thread won"
    assert used[-1] == 2, "a later re-check found the machine quiet again"
    best_fixed = min(sum(load_steps(load, n, 3000)) for n in (1, 2))
    assert total < 1.10 * best_fixed


def load_steps(schedule: Callable[[float, int], float], n: int, steps: int) -> list[float]:
    t, out = 0.0, []
    for _ in range(steps):
        out.append(schedule(t, n))
        t += out[-1]
    return out


def test_pause_drops_the_time_of_validation():
    clock, times = [0.0], iter([0.01] * 20 + [5.0] + [0.01] * 20)
    tuner = ThreadTuner([2, 1], clock=lambda: clock[0], set_threads=lambda n: None)
    for i in range(41):
        if i == 20:
            tuner.pause()  # the next interval holds a validation pass
        tuner.step()
        clock[0] += next(times)
    assert all(v < 20 for p in tuner.probes for v in p["ms_per_step"].values())
    assert max(tuner.recent, default=0) < 1.0


def test_one_core_never_probes():
    clock = [0.0]
    tuner = ThreadTuner([1], clock=lambda: clock[0], set_threads=lambda n: None)
    for _ in range(100):
        tuner.step()
        clock[0] += 0.01
    assert tuner.probes == [] and tuner.threads == 1


@pytest.mark.parametrize("first", [None, 1])
def test_a_hopeless_count_costs_one_step_a_probe(first):
    """Under load the wrong count can be 100x slower: once one count is measured, one step of the other
    settles a probe, and probes thin out so that they cost about `overhead` of the time. A run that starts
    from an earlier run's choice (`first`) never pays a full probe of the wrong count."""
    awful = {2: 0.6, 1: 0.006}
    tuner, total, used = run(lambda t, n: awful[n], 20000, first=first)
    slow_steps = sum(1 for u in used if u == 2)
    assert tuner.threads == 1 and all(p["chosen"] == 1 for p in tuner.probes)
    blind = 7 if first is None else 0  # the very first probe measures all cores for 2 + 5 steps
    assert slow_steps <= blind + 2 * len(tuner.probes)
    assert total < 1.04 * 20000 * awful[1] + blind * awful[2]


def test_an_earlier_choice_starts_without_a_probe_and_still_follows_the_load():
    """The pre-flight probed: training starts on its count, pays no probe, and a later load is still seen."""

    def load(t: float, n: int) -> float:
        return (LOADED if t >= 5.0 else QUIET)[n]

    tuner, total, used = run(load, 3000, first=2)
    assert used[:400].count(1) == 0, "no probe at the start"
    assert used[-1] == 1 and tuner.probes and tuner.probes[-1]["chosen"] == 1


def test_work_outside_a_loop_runs_at_the_last_choice_and_restores_the_count():
    """The pre-flight's own steps and direct fits run at what the last probe chose, not at all cores."""
    import torch

    from sw2.engine import threads

    before, saved = torch.get_num_threads(), threads.last_choice()
    try:
        threads._last_choice[0] = 1
        with threads.at_last_choice():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before
        threads.forget()  # nothing probed yet: the count is left as it is
        with threads.at_last_choice():
            assert torch.get_num_threads() == before
    finally:
        threads._last_choice[0] = saved
        torch.set_num_threads(before)
