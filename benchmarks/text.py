"""Rotten Tomatoes, fresh vs rotten: a TF-IDF + LogisticRegression baseline, sw2's models from scratch and
MiniLM transfer, on the same split (examples/rotten_tomatoes.yaml: 20% test by seed, 10% of the rest
for validation).

The baseline's C is chosen on the validation split, then it is refitted on train and scored on test.
Each sw2 model trains with its settings below (chosen on the validation split) and reports its test
accuracy, training seconds and the pre-flight's seconds.

    python -m benchmarks.text [--models bag fasttext rnn textcnn transformer minilm_frozen minilm_lora minilm_full]
                              [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

import sw2
from benchmarks.common import ROOT, machine, markdown_table
from sw2.data import prepare
from sw2.spec import parse_spec
from sw2.tasks import TASKS

BPE = {"text": {"tokenizer": "bpe", "vocab_size": 8000, "max_tokens": 96}}  # the neural nets' settings
ADAMW = {"optimizer": "adamw", "weight_decay": 0.01}
MODELS: dict[str, dict] = {
    "bag": {},  # the example: a linear TF-IDF bag of words, SGD lr 8, 40 epochs (best on val of 36 settings)
    "fasttext": {"model": {"name": "bag", "widths": [64]}, "train": {"epochs": 10, "lr": 0.003, **ADAMW}},
    "rnn": {"model": {"name": "rnn"}, "train": {"epochs": 4, "lr": 0.002, **ADAMW}, **BPE},
    # Kim's CNN on the example's words (lr 0.005 of 0.002 / 0.005 / 0.02 on val; 10 epochs)
    "textcnn": {"model": {"name": "textcnn"}, "train": {"epochs": 10, "lr": 0.005, "dropout": 0.5, **ADAMW}},
    "transformer": {"model": {"name": "transformer", "layers": 2}, "train": {"epochs": 6, "lr": 0.001, **ADAMW}, **BPE},
    "minilm_frozen": {"model": {"name": "minilm", "finetune": "frozen"}, "train": {"epochs": 4, "lr": 0.003, **ADAMW}},
    "minilm_lora": {"model": {"name": "minilm", "finetune": "lora"}, "train": {"epochs": 2, "lr": 0.001, **ADAMW}},
    "minilm_full": {
        "model": {"name": "minilm", "finetune": "full"},
        "train": {"epochs": 2, "lr": 5e-5, "batch_size": 32, "optimizer": "adamw", "weight_decay": 0.01},
    },
}


def example() -> dict:
    return yaml.safe_load((ROOT / "examples" / "rotten_tomatoes.yaml").read_text())


def tfidf_baseline() -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    spec = parse_spec(example())
    data = prepare(spec, ROOT, TASKS.get(spec.task))
    texts = {k: ex.frame["text"].fillna("").tolist() for k, ex in (("train", data.raw_train), ("val", data.scored_val),
                                                                   ("test", data.raw_test))}  # fmt: skip
    labels = {k: np.asarray(ex.target, dtype=str) for k, ex in (("train", data.raw_train), ("val", data.scored_val),
                                                                 ("test", data.raw_test))}  # fmt: skip
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform(texts["train"])
    best = max(
        (LogisticRegression(C=c, max_iter=2000).fit(x_train, labels["train"]).score(vec.transform(texts["val"]),
                                                                                      labels["val"]), c)
        for c in (0.5, 1, 2, 4, 8, 16)
    )  # fmt: skip
    model = LogisticRegression(C=best[1], max_iter=2000).fit(x_train, labels["train"])
    acc = model.score(vec.transform(texts["test"]), labels["test"])
    return {"model": f"TF-IDF 1-2 grams + LogisticRegression (C={best[1]})", "val_accuracy": round(best[0], 4),
            "test_accuracy": round(acc, 4), "train_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def spec_of(name: str) -> dict:
    """The example with model `name`'s settings: sections merged, a model of another name replacing the bag's
    options."""
    spec = example()
    for key, value in MODELS[name].items():
        other = key == "model" and value.get("name", spec["model"]["name"]) != spec["model"]["name"]
        spec[key] = dict(value) if other else {**spec.get(key, {}), **value}
    spec["name"] = f"rt-{name}"
    return spec


def run(name: str, out: Path, seed: int = 0) -> dict:
    spec = spec_of(name)
    spec["train"]["seed"] = seed
    bundle = sw2.train(spec, out / f"{name}-{seed}", verbose=False, root=ROOT / "examples")
    m = bundle.metrics
    return {
        "model": name,
        "seed": seed,
        "val_accuracy": round(m["val"]["accuracy"], 4),
        "test_accuracy": round(m["test"]["accuracy"], 4),
        "train_seconds": round(m["training"]["seconds"], 1),
        "preflight_seconds": m.get("preflight", {}).get("seconds"),
        "parameters": sum(p.numel() for p in bundle.model.parameters()),
    }


def median_row(runs: list[dict]) -> dict:
    """One row per model: the median of its seeds (each seed's test accuracy listed)."""
    keys = ("val_accuracy", "test_accuracy", "train_seconds", "preflight_seconds")
    row = {k: round(float(np.median([r[k] or 0 for r in runs])), 4) for k in keys}
    return {**row, "model": runs[0]["model"], "tests": " / ".join(f"{r['test_accuracy']:.4f}" for r in runs)}


def main() -> None:
    print(machine(), flush=True)  # CPU model and flags, torch, threads
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per sw2 model (the split stays the same)")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    rows = [] if args.no_baseline else [tfidf_baseline()]
    print(json.dumps(rows[-1]) if rows else "", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            runs = []
            for seed in range(args.seeds):
                runs.append(run(name, Path(tmp), seed))
                print(json.dumps(runs[-1]), flush=True)
            rows.append(median_row(runs))
    for r in rows:
        r["val"], r["test"] = f"{r['val_accuracy']:.4f}", f"{r['test_accuracy']:.4f}"
    columns = {"model": "model", "val": "val accuracy", "test": "test accuracy (median)", "tests": "each seed",
               "train_seconds": "training s", "preflight_seconds": "pre-flight s"}  # fmt: skip
    print(markdown_table(rows, columns))


if __name__ == "__main__":
    main()
