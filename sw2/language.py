"""Language models (task: generate_text): train on a text file, evaluate in nats and bits per character,
and generate text. `sw2.train` hands a generate_text spec to `train_language_model`.

The bundle holds what every bundle holds (weights, model.json, the tokenizer in preprocess.json, the
resolved spec, metrics.json, history.jsonl, curves.png, fingerprint.json) plus samples.txt: text the
trained model wrote from the first line of the validation text.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from sw2 import log
from sw2.bundle import Bundle
from sw2.data.corpus import Prepared, prepare_corpus, read_text, windows
from sw2.engine.generate import sample
from sw2.errors import UserError
from sw2.evaluation.language import language_metrics, unigram
from sw2.models import initialised
from sw2.preflight import run_preflight
from sw2.runs import fingerprint, run_key, train_model, training_summary, write_bundle
from sw2.spec import Spec
from sw2.tasks import TASKS

SAMPLE = {"tokens": 500, "temperature": 0.8, "top_k": None, "seed": 0}  # the sample written into the bundle


def train_language_model(
    spec: Spec, base: Path, out: Path, *, resume: bool, verbose: bool, check: bool = True, force: bool = False
) -> Bundle:
    """Train a generate_text spec into the bundle `out`: the pre-flight's recipe checks first (unless not
    `check`; a FAIL stops unless `force`), then the engine's loop, metrics and a sample."""
    t0 = time.perf_counter()
    data = prepare_corpus(spec, base)
    prep_seconds = time.perf_counter() - t0
    task = TASKS.get(spec.task)
    key = run_key(spec, data.fingerprint)
    verdicts, check_seconds = run_preflight(spec, data, task, None, force) if check else ([], 0.0)
    name, kwargs, model = initialised(spec, data.encoder, data.train, task)
    n_params, tokens = sum(p.numel() for p in model.parameters()), data.report["tokens"]
    log.info(
        f"sw2: {data.report['source']}: {data.encoder.kind} tokens: train {tokens['train']:,}, val "
        f"{tokens['val']:,}, test {tokens['test']:,} (vocabulary {data.encoder.vocab_size}); "
        f"model {name} ({n_params:,} parameters), context {data.encoder.block}"
    )
    result = train_model(model, task, data.train, data.val, spec, out, key, resume=resume, verbose=verbose)
    metrics: dict[str, Any] = {"task": spec.task}
    prior = unigram(data.train, data.encoder.vocab_size)
    for split in ("val", "test"):
        scored = getattr(data, split)
        if len(scored):
            metrics[split] = language_metrics(result.model, task, scored, _chars_per_token(data, split), prior)
    metrics["training"] = training_summary(result, prep_seconds)
    metrics["training"]["tokens_per_second"] = round(result.examples_per_second * data.encoder.block, 1)
    metrics["data"] = data.report
    if check:
        metrics["preflight"] = {"seconds": round(check_seconds, 3), "verdicts": [v.to_json() for v in verdicts]}
    prompt = _first_line(data)
    t1 = time.perf_counter()
    written = data.encoder.decode(sample(result.model, data.encoder.encode(prompt), **SAMPLE))
    metrics["sample"] = {"prompt": prompt, **SAMPLE, "seconds": round(time.perf_counter() - t1, 3)}

    def fill(folder: Path) -> None:
        (folder / "samples.txt").write_text(prompt + written, encoding="utf-8")

    stamp = fingerprint(data.fingerprint, name)
    path = write_bundle(out, result, name, kwargs, data.encoder, spec, metrics, stamp, task.metric, fill)
    scored = metrics.get("val") or metrics.get("test")
    if scored:
        log.info(f"sw2: {scored['nats_per_char']:.4f} nats/char, {scored['bits_per_char']:.4f} bits/char")
    log.info(f"sw2: sample:\n{prompt}{written}\nsw2: bundle written to {path}")
    return Bundle(path)


def _chars_per_token(data: Prepared, split: str) -> float:
    return data.report["characters"][split] / max(1, data.report["tokens"][split])


def _first_line(data: Prepared) -> str:
    """A prompt for the bundle's sample: the first line of the validation (else training) text."""
    first = data.val if len(data.val) else data.train
    text = data.encoder.decode(first.inputs["tokens"][0].tolist())
    return text.split("\n", 1)[0] + "\n" if "\n" in text else text[:1]


def evaluate_text(bundle: Bundle, path: Path) -> dict[str, Any]:
    """A language model's metrics on another text file (all of it)."""
    corpus = bundle.encoder
    text = read_text(path)
    kept = corpus.known(text)
    ids = torch.tensor(corpus.encode(kept), dtype=torch.long)
    scored = windows(ids, corpus.block, corpus.block)
    if not len(scored):
        raise UserError(f"{path}: fewer than {corpus.block + 1} tokens; give a longer text")
    out = language_metrics(bundle.model, TASKS.get("generate_text"), scored, len(kept) / len(ids))
    return {**out, "dropped_unknown_characters": len(text) - len(kept)}
