"""How long `sw2 train SPEC --preset P --time T` takes against the T it is given, and what it reaches: the
wall-time figures that tests/test_presets.py no longer asserts (it checks how each preset shares out --time,
on a clock of its own).

    python -m benchmarks.presets [--spec wine] [--presets fast balanced best] [--time T] [--rounds 1]

Without --time each preset gets the --time its test gives it: fast 5 s, balanced 10 s, best 20 s.

Each line: the preset, the --time given, the seconds the whole command took (imports excluded: one process
runs them all), that over --time, and the test accuracy of the bundle. Figures go to
runs/bench-presets/presets.json. Expect a little over --time where the last member or candidate cannot be cut
short, and under it for `fast` where the spec's own length ends the training first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from typing import Any

from benchmarks.common import ROOT, machine
from sw2.cli import duration

OUT = ROOT / "runs" / "bench-presets"
TIMES = {"fast": "5s", "balanced": "10s", "best": "20s"}  # tests/test_presets.py's --time for each
TABLES = {
    # the tests' wine spec (tests/test_presets.py)
    "wine": {
        "name": "wine",
        "data": {"source": "package", "name": "wine", "split": {"val": 0.2, "test": 0.2, "seed": 0}},
        "task": "classify",
        "train": {"epochs": 20, "batch_size": 32, "lr": 0.003},
    },
}


def one(spec: dict[str, Any], preset: str, seconds: float) -> dict[str, Any]:
    from sw2.presets import train_preset

    out = OUT / f"{spec['name']}-{preset}"
    for folder in (out, out.with_name(f"{out.name}-search"), out.with_name(f"{out.name}-members")):
        shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    bundle = train_preset(spec, preset, out, seconds=seconds, root=ROOT, check=False)
    took = time.perf_counter() - t0
    return {"seconds": round(took, 1), "over_time": round(took / seconds, 2), "test": bundle.metrics["test"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", choices=sorted(TABLES), default="wine")
    ap.add_argument("--presets", nargs="+", choices=["fast", "balanced", "best"], default=["fast", "balanced", "best"])
    ap.add_argument("--time", default=None, help="every preset's --time (default: fast 5s, balanced 10s, best 20s)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each preset (the median is reported)")
    args = ap.parse_args()
    print(machine(), flush=True)
    spec = TABLES[args.spec]
    OUT.mkdir(parents=True, exist_ok=True)
    import sw2.api  # noqa: F401  (imported before the first timing)

    rows = []
    for preset in args.presets:
        seconds = duration(args.time or TIMES[preset])
        runs = [one(spec, preset, seconds) for _ in range(args.rounds)]
        took = statistics.median(r["seconds"] for r in runs)
        metric = "accuracy" if "accuracy" in runs[0]["test"] else next(iter(runs[0]["test"]))
        row = {"preset": preset, "time": seconds, "seconds": took, "over_time": round(took / seconds, 2),
               "rounds": [r["seconds"] for r in runs], metric: [round(r["test"][metric], 4) for r in runs]}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    (OUT / "presets.json").write_text(json.dumps({"machine": machine(), "spec": args.spec, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
