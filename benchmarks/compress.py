"""sw2 compress against its targets, each measured side by side in one run (docs/benchmarks.md):

- MNIST conv net (examples/mnist.yaml), int8: accuracy within 0.2 points of fp32, file >= 2x smaller;
- the MiniLM text classifier (Rotten Tomatoes, full fine-tune as benchmarks/text.py's minilm_full), int8:
  accuracy within 1 point, >= 1.5x faster at batch 1 (sentence-transformers reports 3.08x for int8 ONNX on
  a CPU against fp32 PyTorch);
- the CIFAR-10 net (examples/cifar10.yaml), pruned: >= 1.3x the throughput at batch 64, within 1 point.

Each bundle is trained (or reused with --bundle NAME=PATH), then compressed (`sw2.api.compress`, whose table
holds eager fp32, ONNX fp32, ONNX int8 and the pruned variants). Speed-ups are given against both eager
PyTorch and ONNX fp32; the targets are read against eager fp32, the size against the fp32 ONNX file.

    python -m benchmarks.compress [--only mnist minilm cifar] [--bundle mnist=runs/x] [--prune 0.3] [--quick]

--quick trains a sliver of each recipe and times few calls: for checking that the script runs, not figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

import sw2
from benchmarks.common import ROOT, datasets_dir, machine
from benchmarks.text import MODELS as TEXT_MODELS
from sw2.bundle import Bundle
from sw2.ship.compress import markdown

OUT = Path("runs") / "bench-compress"


def spec_of(name: str, quick: bool) -> dict[str, Any]:
    """The benchmark's spec for `name`, data paths made absolute; `quick`: a sliver of its training."""
    if name == "minilm":
        spec = yaml.safe_load((ROOT / "examples" / "rotten_tomatoes.yaml").read_text())
        for key, value in TEXT_MODELS["minilm_full"].items():
            spec[key] = {**spec.get(key, {}), **value}
        spec["name"] = "rt-minilm_full"
    else:
        spec = yaml.safe_load((ROOT / "examples" / f"{'mnist' if name == 'mnist' else 'cifar10'}.yaml").read_text())
        data = "mnist" if name == "mnist" else "cifar10-jpg.tar.gz"
        spec["data"]["path"] = str(datasets_dir() / data)
    if quick:
        spec["train"].update(epochs=0.05 if name != "minilm" else 0.02, time_budget=None)
    return spec


def bundle_for(name: str, spec: dict[str, Any], given: dict[str, str]) -> Bundle:
    if name in given:
        return sw2.load(given[name])
    print(f"training {name} ...", flush=True)
    return sw2.train(spec, OUT / name, verbose=False, check=False, root=ROOT / "examples")


def ratios(rows: list[dict[str, Any]], variant: str) -> dict[str, float]:
    """`variant` against eager fp32 and ONNX fp32: metric points, size and speed ratios."""
    by = {r["variant"]: r for r in rows}
    v, eager, onnx = by[variant], by["eager fp32"], by["onnx fp32"]
    return {
        "points": 100 * (v["value"] - eager["value"]),
        "points_vs_onnx": 100 * (v["value"] - onnx["value"]),
        "smaller": onnx["size_bytes"] / v["size_bytes"],
        "smaller_vs_weights": eager["size_bytes"] / v["size_bytes"],
        "b1": eager["p50_ms"] / v["p50_ms"],
        "b1_vs_onnx": onnx["p50_ms"] / v["p50_ms"],
        "b64": v["throughput"] / eager["throughput"],
        "b64_vs_onnx": v["throughput"] / onnx["throughput"],
    }


def verdicts(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """The targets of `name`, each with its figure and PASS / MISS."""

    def line(what: str, ok: bool) -> str:
        return f"{name}: {what}: {'PASS' if ok else 'MISS'}"

    if name == "mnist":
        r = ratios(rows, "onnx int8")
        return [
            line(f"int8 accuracy {r['points']:+.2f} points vs eager fp32 (target >= -0.2)", r["points"] >= -0.2),
            line(f"int8 file {r['smaller']:.2f}x smaller than ONNX fp32 (target >= 2)", r["smaller"] >= 2),
        ]
    if name == "minilm":
        r = ratios(rows, "onnx int8")
        return [
            line(f"int8 accuracy {r['points']:+.2f} points vs eager fp32 (target >= -1)", r["points"] >= -1),
            line(f"int8 {r['b1']:.2f}x faster at batch 1 than eager fp32 ({r['b1_vs_onnx']:.2f}x vs ONNX fp32; "
                 "target >= 1.5)", r["b1"] >= 1.5),
        ]  # fmt: skip
    out = []
    for variant, ref in (("pruned eager fp32", "b64"), ("pruned onnx fp32", "b64_vs_onnx")):
        r = ratios(rows, variant)
        points = r["points"] if "eager" in variant else r["points_vs_onnx"]
        out.append(line(f"{variant}: {r[ref]:.2f}x the throughput at batch 64 of its unpruned twin (target >= 1.3)",
                        r[ref] >= 1.3))  # fmt: skip
        out.append(line(f"{variant}: {points:+.2f} points (target >= -1)", points >= -1))
    return out


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=["mnist", "minilm", "cifar"], choices=["mnist", "minilm", "cifar"])
    ap.add_argument("--bundle", nargs="*", default=[], help="NAME=PATH: reuse a trained bundle instead of training")
    ap.add_argument("--prune", type=float, default=0.3, help="share of the CIFAR net's channels to remove (0.3: "
                    "about half the multiply-adds)")  # fmt: skip
    ap.add_argument("--fine-tune", type=float, default=0.25, help="share of the CIFAR recipe the pruned net trains")
    ap.add_argument("--distill", type=float, default=0.0, help="share of the pruned net's loss from the unpruned net")
    ap.add_argument("--quick", action="store_true", help="tiny training and timing: checks the script runs")
    args = ap.parse_args()
    given = dict(b.split("=", 1) for b in args.bundle)
    calls = 20 if args.quick else 200
    report: dict[str, Any] = {"machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    lines = []
    for name in args.only:
        spec = spec_of(name, args.quick)
        bundle = bundle_for(name, spec, given)
        prune = args.prune if name == "cifar" else None
        with tempfile.TemporaryDirectory() as tmp:
            spec_file = Path(tmp) / "spec.yaml"  # the data's absolute path: the bundle's spec names it outside
            spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
            done = sw2.compress(
                bundle, "int8", prune, OUT / f"{name}-compressed", spec_from=spec_file, fine_tune=args.fine_tune,
                distill=args.distill, calls=calls, force=True,
            )  # fmt: skip
        print(f"\n{name} ({bundle.path}; metric on the {done.scored_on}):\n{markdown(done.rows)}", flush=True)
        lines += verdicts(name, done.rows)
        report[name] = {"bundle": str(bundle.path), "rows": done.rows, "verdicts": verdicts(name, done.rows)}
    (OUT / "compress.json").write_text(json.dumps(report, indent=2, default=str))
    print("\n" + "\n".join(lines))
    print(f"figures: {OUT / 'compress.json'}")


if __name__ == "__main__":
    main()
