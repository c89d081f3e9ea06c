"""Ensembles against one model, on the test split: K runs of one spec with seeds 0..K-1 combined by
`sw2 ensemble`, and one run with `train.snapshots: K` (no extra training), side by side in one run.

    python -m benchmarks.ensemble cifar [--members 3] [--reuse PATH]   # examples/cifar10.yaml (190 s a run)
    python -m benchmarks.ensemble table [--data breast_cancer] [--members 5]

`--reuse PATH`: a bundle of the spec at seed 0 already trained (e.g. runs/bench-compress/cifar).
Figures go to runs/bench-ensemble/<what>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

import sw2
from benchmarks.common import ROOT, machine
from sw2.bundle import Bundle

OUT = ROOT / "runs" / "bench-ensemble"


def cifar_spec() -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "examples" / "cifar10.yaml").read_text())
    spec["data"]["path"] = str((ROOT / "examples" / spec["data"]["path"]).resolve())
    return spec


def table_spec(data: str) -> dict[str, Any]:
    task = "regress" if data == "diabetes" else "classify"
    split = {"val": 0.2, "test": 0.2, "seed": 0}
    return {"name": data, "data": {"source": "package", "name": data, "split": split}, "task": task, "train": {}}


def compare(spec: dict[str, Any], name: str, members: int, reuse: str | None) -> dict[str, Any]:
    bundles: list[Bundle] = []
    for seed in range(members):
        if seed == 0 and reuse:
            bundles.append(Bundle(reuse))
            continue
        s = {**spec, "name": f"{name}-s{seed}", "train": {**spec.get("train", {}), "seed": seed}}
        bundles.append(sw2.train(s, OUT / f"{name}-s{seed}", root=ROOT, check=False))
    metric = bundles[0].task.metric
    ens = sw2.ensemble(bundles, OUT / f"{name}-ensemble", spec_from=_spec_file(spec, name))
    snap_spec = {**spec, "name": f"{name}-snapshots", "train": {**spec.get("train", {}), "snapshots": members}}
    snap = sw2.train(snap_spec, OUT / f"{name}-snapshots", root=ROOT, check=False)
    singles = [b.metrics["test"][metric] for b in bundles]
    return {
        "metric": metric,
        "singles": singles,
        "single_median": sorted(singles)[len(singles) // 2],
        "ensemble": ens.metrics["test"][metric],
        "snapshots": snap.metrics["test"][metric],
        "snapshot_seconds": snap.metrics["training"]["seconds"],
        "single_seconds": [b.metrics["training"]["seconds"] for b in bundles],
    }


def _spec_file(spec: dict[str, Any], name: str) -> Path:
    path = OUT / f"{name}-spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["cifar", "table"])
    ap.add_argument("--members", type=int, default=None, help="seeds and snapshots (cifar 3, table 5)")
    ap.add_argument("--data", default="breast_cancer")
    ap.add_argument("--reuse", help="a bundle of the spec at seed 0")
    args = ap.parse_args()
    print(machine(), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "cifar":
        result = compare(cifar_spec(), "cifar10", args.members or 3, args.reuse)
    else:
        result = compare(table_spec(args.data), args.data, args.members or 5, args.reuse)
    (OUT / f"{args.what}.json").write_text(json.dumps({"machine": machine(), "result": result}, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
