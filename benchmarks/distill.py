"""Distillation: the fine-tuned MiniLM text classifier (Rotten Tomatoes) teaches small from-scratch text
models; each student beside the same model trained on the labels alone, and the batch-1 latency of each
against the teacher's, in one run.

    python -m benchmarks.distill --teacher runs/rt-minilm_full [--students bag textcnn] [--copies 4] [--alpha 0.9]
                                 [--steps 1]

The teacher is benchmarks/text.py's minilm_full (trained here when --teacher is not given: about 13 minutes
on 2 cores), on the example's split; its outputs on the training rows and their perturbed copies are
computed once (on its ONNX graph, exported here if it has none). Latency: `sw2.ship.latency.measure` of each
bundle's network (eager PyTorch), 200 single-example calls on test examples, p50, the teacher and students
taking turns for `--rounds` rounds (medians reported); `--reuse` measures students trained before. Figures go to
runs/bench-distill/distill.json.
"""

from __future__ import annotations

import argparse
import json
import statistics

import sw2
from benchmarks.common import ROOT, machine
from benchmarks.text import spec_of
from sw2.bundle import Bundle
from sw2.ship.latency import measure

OUT = ROOT / "runs" / "bench-distill"


def teacher_bundle(path: str | None) -> Bundle:
    b = Bundle(path) if path else sw2.train(spec_of("minilm_full"), OUT / "rt-minilm_full", root=ROOT / "examples")
    if not (b.path / "model.onnx").is_file():
        sw2.export(b)
    return b


def p50_ms(b: Bundle, backend: str = "torch") -> float:
    from sw2.tasks import TASKS

    data = TASKS.get("classify").prepare(b.spec, ROOT / "examples")
    run = b.run if backend == "torch" else Bundle(b.path, backend=backend).run
    return measure(run, data.test.inputs, calls=200).p50_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", help="the fine-tuned MiniLM bundle (trained here if absent)")
    students = ["bag", "fasttext", "rnn", "textcnn", "transformer"]
    ap.add_argument("--students", nargs="+", default=["bag", "textcnn"], choices=students)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--steps", type=float, default=1.0, help="the distilled run's steps / the labels-only run's")
    ap.add_argument("--rounds", type=int, default=5, help="latency: rounds of teacher and students in turn")
    ap.add_argument("--reuse", action="store_true", help="measure the students already in runs/bench-distill")
    args = ap.parse_args()
    print(machine(), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    teacher = teacher_bundle(args.teacher)
    rows = [{"model": "teacher: MiniLM full fine-tune", "test": teacher.metrics["test"]["accuracy"],
             "val": teacher.metrics.get("val", {}).get("accuracy", float("nan")),
             "onnx_p50_ms": p50_ms(teacher, "onnx")}]  # fmt: skip
    bundles = [teacher]
    distill = {"teacher": str(teacher.path.resolve()), "copies": args.copies, "alpha": args.alpha,
               "temperature": args.temperature}  # fmt: skip
    for student in args.students:
        for kind in ("labels", "distilled"):
            spec = spec_of(student)
            if kind == "distilled":
                spec["name"] += "-distilled"
                epochs = spec["train"].get("epochs")
                if epochs:  # `--steps` x the labels-only run's steps: an epoch now also passes over the copies
                    spec["train"]["epochs"] = max(1.0, epochs * args.steps / (args.copies + 1))
                spec["train"]["distill"] = distill
            path = OUT / spec["name"]
            b = Bundle(path) if args.reuse else sw2.train(spec, path, root=ROOT / "examples", check=False)
            bundles.append(b)
            rows.append({"model": f"{student} ({kind})", "test": b.metrics["test"]["accuracy"],
                         "val": b.metrics["val"]["accuracy"], "train_s": b.metrics["training"]["seconds"]})  # fmt: skip
            print(rows[-1], flush=True)
    # batch-1 latency of sub-millisecond networks moves with the machine's state: the models take turns, and
    # each figure is the median over the rounds of its p50 (the ratio: the median of each round's ratio)
    rounds = [[p50_ms(b) for b in bundles] for _ in range(args.rounds)]
    for i, row in enumerate(rows):
        row["p50_ms"] = statistics.median(r[i] for r in rounds)
        row["speedup"] = statistics.median(r[0] / r[i] for r in rounds)
        row["speedup_range"] = [min(r[0] / r[i] for r in rounds), max(r[0] / r[i] for r in rounds)]
    (OUT / "distill.json").write_text(json.dumps({"machine": machine(), "args": vars(args), "rows": rows,
                                                  "rounds_ms": rounds}, indent=2))  # fmt: skip
    print("\n| model | val | test | p50 ms (batch 1) | teacher / model (range) |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        lo, hi = r["speedup_range"]
        print(f"| {r['model']} | {r['val']:.4f} | {r['test']:.4f} | {r['p50_ms']:.2f} | {r['speedup']:.1f}x "
              f"({lo:.1f}-{hi:.1f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
