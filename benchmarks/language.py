"""Language models on tinyshakespeare (first 90% train, last 10% val): the example's GPT (byte-level BPE)
with its 10-minute budget, the same net on characters with the same budget, nanoGPT's CPU recipe run by
sw2's engine, and (optional) a char-rnn with the budget; then the sampling speed of the example's GPT, with
and without the KV cache, for 500 generated tokens (median of 3, alternating).

    python -m benchmarks.language [--runs gpt gpt_char nanogpt_recipe charrnn] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml

import sw2
from benchmarks.common import ROOT, datasets_dir, machine, markdown_table

RUNS: dict[str, dict] = {
    "gpt": {},  # examples/tinyshakespeare.yaml as it is
    "gpt_char": {  # the same net on characters, with the settings tried for it on the tuning split
        "text": {"tokenizer": "char", "max_tokens": 128},
        "train": {"batch_size": 32, "lr": 0.002, "dropout": 0.0},
    },
    "nanogpt_recipe": {  # nanoGPT's README CPU recipe: 4 layers, 128 wide, block 64, batch 12, 2,000 iterations
        "text": {"tokenizer": "char", "max_tokens": 64},
        "model": {"name": "gpt", "widths": [128], "layers": 4, "heads": 4},
        "train": {
            "epochs": 2000 * 12 * 64 / 1_003_854,
            "time_budget": None,
            "batch_size": 12,
            "lr": 0.001,
            "schedule": "cosine",
            "warmup": 0.05,
            "weight_decay": 0.1,
            "grad_clip": 1.0,
            "dropout": 0.0,
        },
    },
    "charrnn": {  # a 2-layer LSTM on characters with the example's 10-minute budget (not tuned)
        "text": {"tokenizer": "char", "max_tokens": 128},
        "model": {"name": "charrnn", "widths": [512], "layers": 2, "cell": "lstm"},
        "train": {"dropout": 0.0},
    },
}


def spec_for(name: str) -> dict:
    spec = yaml.safe_load((ROOT / "examples" / "tinyshakespeare.yaml").read_text())
    spec["data"]["path"] = str(datasets_dir() / "tinyshakespeare" / "input.txt")
    for key, part in RUNS[name].items():
        spec[key] = part if key in ("model", "text") else {**spec[key], **part}
    return {**spec, "name": f"lm-{name}"}


def sampling_speed(bundle: sw2.bundle.Bundle, repeats: int, tokens: int = 500) -> dict:
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for cache in (True, False):
            t0 = time.perf_counter()
            bundle.generate("\n", tokens, temperature=0.8, seed=0, cache=cache)
            seconds[cache].append(time.perf_counter() - t0)
    with_cache, without = (tokens / statistics.median(seconds[c]) for c in (True, False))
    return {"tokens": tokens, "with_cache_tps": round(with_cache, 1), "without_cache_tps": round(without, 1),
            "speedup": round(with_cache / without, 2)}  # fmt: skip


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["gpt", "gpt_char", "nanogpt_recipe"], choices=list(RUNS))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            bundle = sw2.train(spec_for(name), Path(tmp) / name, verbose=False)
            m = bundle.metrics
            row = {"run": name, "parameters": f"{sum(p.numel() for p in bundle.model.parameters()):,}",
                   "seconds": round(m["training"]["seconds"], 1), "epochs": m["training"]["epochs"],
                   "preflight_seconds": m["preflight"]["seconds"], "tokenizer": m["data"]["tokenizer"],
                   "tokens_per_second": m["training"]["tokens_per_second"],
                   "val_nats_per_char": m["val"]["nats_per_char"], "val_bits_per_char": m["val"]["bits_per_char"],
                   "sample": (bundle.path / "samples.txt").read_text()[:600],
                   "files": sorted(f for f in ("report.html", "tests.xml") if (bundle.path / f).is_file()),
                   "tests": [(t["name"], round(t["value"], 4), t["passed"]) for t in m.get("tests", [])]}  # fmt: skip
            if name == "gpt":
                row["sampling"] = sampling_speed(bundle, args.repeats)
            rows.append(row)
            print(json.dumps(row), flush=True)
    columns = {
        "run": "run",
        "tokenizer": "tokens",
        "parameters": "parameters",
        "preflight_seconds": "pre-flight s",
        "seconds": "training s",
        "epochs": "epochs",
        "tokens_per_second": "tokens/s",
        "val_nats_per_char": "val nats/char",
        "val_bits_per_char": "val bpc",
    }
    print(markdown_table(rows, columns))


if __name__ == "__main__":
    main()
