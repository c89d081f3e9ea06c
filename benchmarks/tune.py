"""sw2 tune against the spec it starts from, on the test split (touched once, for these figures; the search
reads train and val only).

    python -m benchmarks.tune text [--time 20m]              # examples/rotten_tomatoes.yaml vs TF-IDF + LR
    python -m benchmarks.tune tables [--time 4m] [--tables wine breast_cancer]   # default spec vs tuned
    python -m benchmarks.tune pruners [--time 4m] [--spec examples/digits.yaml]  # median vs hyperband

Each line: the starting spec's test figure, the tuned bundle's, the trials run (finished / pruned) and the
best val figure. Figures go to runs/bench-tune/<what>.json.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

import sw2
from benchmarks.common import ROOT, machine
from sw2.cli import duration

OUT = ROOT / "runs" / "bench-tune"


def tuned(spec: dict[str, Any], name: str, seconds: float, pruner: str = "median") -> dict[str, Any]:
    import shutil

    out = OUT / f"{name}-tune"
    shutil.rmtree(out, ignore_errors=True)
    done = sw2.tune(spec, out, seconds=seconds, pruner=pruner, root=ROOT)
    metric = done.bundle.task.metric
    states = [r["state"] for r in done.leaderboard]
    return {
        "test": done.bundle.metrics["test"][metric],
        "best_val": max(r["val"] for r in done.leaderboard if r["state"] == "done"),
        "trials": len(states),
        "confirmed": [{"trial": c.trial, "val": c.val, "folds": c.folds} for c in done.confirmed],
        "best_trial": done.trial,
        "pruned": states.count("pruned"),
        "best_spec": yaml.safe_load((out / "best.yaml").read_text())["train"]
        | {"model": done.best_spec.model.model_dump()},
    }


def plain(spec: dict[str, Any], name: str) -> float:
    b = sw2.train(spec, OUT / name, root=ROOT, check=False)
    return b.metrics["test"][b.task.metric]


def text(seconds: float) -> dict[str, Any]:
    from benchmarks.text import example, tfidf_baseline

    spec = example()
    return {"tfidf_lr": tfidf_baseline()["test_accuracy"], "example": plain(spec, "rt"), **tuned(spec, "rt", seconds)}


def tables(names: list[str], seconds: float) -> dict[str, Any]:
    out = {}
    for name in names:
        task = "regress" if name == "diabetes" else "classify"
        split = {"val": 0.2, "test": 0.2, "seed": 0}
        spec = {"name": name, "data": {"source": "package", "name": name, "split": split}, "task": task}
        if name == "penguins":
            spec["target"] = "species"
        out[name] = {"default": plain(spec, name), **tuned(spec, name, seconds)}
        print(name, out[name], flush=True)
    return out


def pruners(spec_path: str, seconds: float) -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / spec_path).read_text())
    return {p: tuned(spec, f"{spec['name']}-{p}", seconds, pruner=p) for p in ("median", "hyperband")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["text", "tables", "pruners"])
    ap.add_argument("--time", default=None, help="the search's budget (text 20m, others 4m)")
    ap.add_argument("--tables", nargs="+", default=["wine", "breast_cancer"])
    ap.add_argument("--spec", default="examples/digits.yaml")
    args = ap.parse_args()
    print(machine(), flush=True)
    seconds = duration(args.time or ("20m" if args.what == "text" else "4m"))
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "text":
        result = text(seconds)
    elif args.what == "tables":
        result = tables(args.tables, seconds)
    else:
        result = pruners(args.spec, seconds)
    record = {"machine": machine(), "seconds": seconds, "result": result}
    (OUT / f"{args.what}.json").write_text(json.dumps(record, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
