"""Training speed with other processes busy on the CPU: sw2's measured thread choice against fixed counts.

The MNIST example (examples/mnist.yaml, `--epochs` of it, no pre-flight) trains with `threads` unset (sw2
times real steps and picks the count), pinned to 1, and pinned to all cores, first on a quiet machine and
then beside N processes that each keep one core busy (`python -c 'while True: pass'`). Configurations
alternate within each repeat, so drift in the machine's speed hits them alike; medians of the repeats.

    python -m benchmarks.under_load --repeats 3 --busy 0 1 [--epochs 1]

Targets (issue 16): under load within 10% of the best fixed count; quiet, within 3% of all cores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import sw2
from benchmarks.common import machine, markdown_table
from benchmarks.mnist import example_spec
from sw2.engine import threads
from sw2.engine.hardware import cores, tune_malloc


def busy(n: int) -> list[subprocess.Popen]:
    """N processes that each spin on a core until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def one_run(pinned: int | None, epochs: float, seed: int) -> dict:
    threads.forget()  # each run starts as a fresh `sw2 train --no-check` would
    raw = example_spec(seed, epochs=epochs)
    raw["train"]["threads"] = pinned
    m = sw2.train(raw, "runs/bench-under-load", verbose=False, check=False).metrics["training"]
    return {
        "ips": m["examples_per_second"],
        "threads": m["threads"],
        "probes": len(m["thread_choice"].get("probes", [])),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=float, default=1.0)
    args = ap.parse_args()
    tune_malloc()
    print(machine(), flush=True)
    configs = {"auto": None, "1 thread": 1, f"{cores()} threads": cores()}
    rows = []
    for n_busy in args.busy:
        spinners = busy(n_busy)
        time.sleep(1.0)
        try:
            seen: dict[str, list[dict]] = {c: [] for c in configs}
            for r in range(args.repeats):
                for name, pinned in configs.items():
                    seen[name].append(one_run(pinned, args.epochs, seed=r))
                    last = seen[name][-1]
                    print(
                        f"busy {n_busy} repeat {r} {name}: {last['ips']:,.0f} img/s (threads at the end "
                        f"{last['threads']}, probes {last['probes']})",
                        flush=True,
                    )
        finally:
            for p in spinners:
                p.kill()
        med = {c: statistics.median(x["ips"] for x in runs) for c, runs in seen.items()}
        fixed = {c: v for c, v in med.items() if c != "auto"}
        best = max(fixed, key=fixed.__getitem__)
        rows.append(
            {
                "busy": n_busy,
                **{c: f"{v:,.0f}" for c, v in med.items()},
                "best fixed": best,
                "auto / best fixed": f"{med['auto'] / fixed[best]:.3f}",
                "auto / all cores": f"{med['auto'] / fixed[f'{cores()} threads']:.3f}",
            }
        )
    columns = {"busy": "busy processes", **{c: f"{c} (img/s)" for c in configs}}
    columns.update({"best fixed": "best fixed", "auto / best fixed": "auto / best fixed"})
    columns["auto / all cores"] = "auto / all cores"
    print(markdown_table(rows, columns))


if __name__ == "__main__":
    main()
