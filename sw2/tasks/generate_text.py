"""generate_text: a language model of one text file. The file is split in order and tokenised (sw2.data.
corpus); the loss is nats per token; the scores are nats and bits per character, perplexity and next-token
accuracy beside a unigram model; the bundle also holds samples.txt, text the trained model wrote from the
first line of the validation text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from sw2.data.corpus import (
    Corpus,
    Prepared,
    prepare_corpus,
    read_text,
    split_text,
    text_fingerprint,
    unigram_counts,
    windows,
)
from sw2.data.dataset import TensorSet
from sw2.engine.generate import options_error, stream
from sw2.errors import UserError
from sw2.evaluation.language import language_metrics, unigram
from sw2.spec import LatencyTest, MetricTest
from sw2.task_rules import GENERATE_TEXT, check_generate_text
from sw2.tasks import TASKS
from sw2.tasks import generate_text_report as r
from sw2.tasks.base import HeldOut, Scored, Task, TinyExample

if TYPE_CHECKING:
    from sw2.bundle import Bundle
    from sw2.engine.result import FitResult
    from sw2.spec import Spec

MAX_TOKEN_CHARS = 16  # a prompt is cut to its last block x this many characters before byte-level BPE encodes it
SAMPLE = {"tokens": 500, "temperature": 0.8, "top_k": None, "seed": 0}  # the sample written into the bundle


class GenerateText(Task):
    """Next-token prediction: outputs B x T x V, targets B x T."""

    windows = True  # overlapping windows of the text
    metrics = GENERATE_TEXT.metrics  # declared in sw2.task_rules, where the spec reads them
    predicts, generates = False, True  # text after a prompt, never examples: sw2 generate, a server's /v1/generate
    compresses = False  # sw2 export gives its graph; compressing scores examples, which it takes none of

    # ---- training --------------------------------------------------------------------------------
    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Nats per token of each window."""
        flat = F.cross_entropy(
            out.float().flatten(0, 1), y.flatten(), label_smoothing=label_smoothing, reduction="none"
        )
        return flat.view(y.shape).mean(1)

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """Next-token accuracy."""
        return (out.argmax(-1) == y).float().mean().item()

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        """The unigram log-frequencies of the training tokens (of at most 4,096 windows: they may overlap)."""
        counts = unigram_counts(y, n_out).float()
        prior = counts.clamp_min(1) / counts.sum()
        return prior.log() - prior.log().mean()

    def init_loss(self, data: Prepared) -> tuple[float, str]:
        tokens = unigram_counts(data.train.target, 0).float()
        prior = tokens[tokens > 0] / tokens.sum()
        return float(-(prior * prior.log()).sum()), "the unigram entropy of the training tokens"

    # ---- the run ---------------------------------------------------------------------------------
    def check_spec(self, spec: Spec) -> None:
        """A language model reads one text file, with a lossless tokenizer and a decoder model."""
        super().check_spec(spec)
        check_generate_text(spec)

    def tiny_example(self, folder: Path) -> TinyExample:
        """A few kB of counting rhymes, a one-layer character GPT of 2 epochs, a bits-per-character test."""
        words = "one two three four five six seven eight nine ten".split()
        lines = [" ".join(words[(i + j) % 10] for j in range(5)) + "," for i in range(300)]
        (folder / "tiny.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        train = {"epochs": 2, "batch_size": 32, "lr": 0.003, "deterministic": True, "threads": 1, "precision": "fp32"}
        spec = {"name": "tiny-generate_text", "task": "generate_text", "text": {"tokenizer": "char", "max_tokens": 32},
                "data": {"path": "tiny.txt", "split": {"val": 0.1, "test": 0.1}}, "train": train,
                "model": {"name": "gpt", "widths": [32], "layers": 1, "heads": 2},
                "tests": [{"kind": "metric", "metric": "bits_per_char", "max": 8.0}]}  # fmt: skip
        return TinyExample(spec, ("/v1/generate", {"prompt": "one two", "tokens": 8}))

    def prepare(self, spec: Spec, root: Path) -> Prepared:
        return prepare_corpus(spec, root)

    def load_encoder(self, state: dict[str, Any]) -> Corpus:
        return Corpus.from_json(state)

    def describe(self, data: Prepared) -> str:
        tokens = data.report["tokens"]
        return (
            f"{data.encoder.kind} tokens: train {tokens['train']:,}, val {tokens['val']:,}, test {tokens['test']:,} "
            f"(vocabulary {data.encoder.vocab_size}), context {data.encoder.block}"
        )

    def validate_tests(self, tests: list[Any], encoder: Corpus, examples: TensorSet, root: Path) -> None:
        """Metric tests on the test windows (val without a test split) and latency; no slices or labels."""
        for t in tests:
            if isinstance(t, MetricTest):  # its metric name: checked with the spec (Task.check_spec)
                if t.label is not None or t.where is not None or t.by is not None:
                    raise UserError("tests: label, where and by slice table rows; drop them for generate_text")
            elif not isinstance(t, LatencyTest):
                raise UserError(f"tests: kind '{t.kind}' is for tables and images; use metric or latency tests")
        if tests and not len(examples):
            raise UserError("tests: no test text to test on; set data.split.test (or give --data)")

    def score_run(self, model: torch.nn.Module, data: Prepared, spec: Spec, result: FitResult) -> Scored:
        """nats/bits per character on val and test beside the unigram baseline, tokens per second, and a sample
        written from the first line of the validation text (samples.txt)."""
        scored = Scored()
        prior = unigram(data.train, data.encoder.vocab_size)
        for split in ("val", "test"):
            windows_ = getattr(data, split)
            if len(windows_):
                scored.metrics[split] = language_metrics(model, self, windows_, _chars_per_token(data, split), prior)
        scored.training["tokens_per_second"] = round(result.examples_per_second * data.encoder.block, 1)
        prompt = _first_line(data)
        t0 = time.perf_counter()
        written = data.encoder.decode(list(stream(model, data.encoder.encode(prompt), **SAMPLE)))
        scored.metrics["sample"] = {"prompt": prompt, **SAMPLE, "seconds": round(time.perf_counter() - t0, 3)}
        scored.files["samples.txt"] = prompt + written
        return scored

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        msg = f"{scores['bits_per_char']:.4f} bits/char vs {base['bits_per_char']:.4f} ({base['name']})"
        return scores["bits_per_char"] < base["bits_per_char"], msg

    def what_the_net_sees(self, spec: Spec, data: Prepared, folder: Path, n: int = 4) -> None:
        """The first training windows as text: what the model reads (it predicts each next token)."""
        decode = data.encoder.decode
        parts = [
            f"--- window {i + 1} ---\n{decode(data.train.inputs['tokens'][i].tolist())}"
            for i in range(min(n, len(data.train)))
        ]
        (folder / "what_the_net_sees.txt").write_text("\n".join(parts) + "\n", encoding="utf-8")

    def held_out(self, bundle: Bundle, spec: Spec, root: Path) -> HeldOut:
        """The val and test text of `spec`'s file as windows of the bundle's own tokenizer (never a new one);
        model tests run on the test text, or on val where the split holds none."""
        _, parts = split_text(spec, root)
        enc = bundle.encoder
        val, test = (
            windows(torch.tensor(enc.encode(enc.known(parts[k])), dtype=torch.long), enc.block, enc.block)
            for k in ("val", "test")
        )
        return HeldOut(test, val, test if len(test) else val, text_fingerprint(parts["train"]))

    def examples_from(self, bundle: Bundle, path: Path) -> TensorSet:
        """Another text file (all of it) as windows of the model's context; characters the tokenizer never saw
        are left out."""
        return _read_windows(bundle.encoder, path)[0]

    def evaluate_file(self, bundle: Bundle, path: Path) -> dict[str, Any]:
        """A language model's metrics on another text file (all of it)."""
        scored, chars_per_token, dropped = _read_windows(bundle.encoder, path)
        out = language_metrics(bundle.model, self, scored, chars_per_token)
        return {**out, "dropped_unknown_characters": dropped}

    def scores_of(self, subject: Any, part: TensorSet) -> dict[str, Any]:
        return _scores(self, subject.model, subject.encoder, part)

    def inputs_of(self, subject: Any, part: TensorSet) -> dict[str, torch.Tensor]:
        return part.inputs

    def report_scores(self, run: Any) -> dict[str, Any]:
        """The scores of the windows reported on; the unigram baseline (fitted on the training text) is the one
        saved at training when they are the run's own split."""
        if not len(run.test):
            return {}
        scores = _scores(self, run.b.model, run.b.encoder, run.test)
        saved = run.m.get("test" if run.scored_on == "test split" else "val", {})
        if "baseline" in saved and not run.scored_on.startswith("other data"):
            scores["baseline"] = saved["baseline"]
        return scores

    def report_sections(self) -> list[tuple[str, str, Any]]:
        return [("samples", "Samples", r.samples), ("tokens", "Per-token loss", r.token_losses)]

    def sample_size(self, metrics: dict[str, Any]) -> str:
        return f"{metrics['tokens_scored']:,} tokens" if "tokens_scored" in metrics else super().sample_size(metrics)

    # ---- using a bundle --------------------------------------------------------------------------
    def predict(self, bundle: Bundle, data: Any, *_: Any) -> Any:
        """A language model takes no examples: refused, naming what it does."""
        raise UserError(f"{bundle.path} is a language model: it generates text (sw2 generate BUNDLE --prompt ...)")

    predict_proba = prediction_rows = predict  # type: ignore[assignment]

    def generate(
        self,
        bundle: Bundle,
        prompt: str = "\n",
        tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        cache: bool = True,
    ) -> str:
        """Text the model writes after `prompt` (`tokens` new tokens; temperature 0 = greedy)."""
        return bundle.encoder.decode(list(_new_tokens(bundle, prompt, tokens, temperature, top_k, seed, cache)))

    def stream(self, bundle: Bundle, prompt: str = "\n", **options: Any) -> Iterator[str]:
        """The text of `generate` (the same options), piece by piece as each token is sampled (a server's
        stream). Each piece is what the new token adds to the decoded text, so sub-word merges come out right; a
        character whose bytes span tokens (Chinese in byte-level BPE) is held back until the token that completes it,
        and what never completes is flushed at the end as generate gives it."""
        new: list[int] = []
        written = ""
        for token in _new_tokens(bundle, prompt, **options):
            new.append(token)
            text = bundle.encoder.decode(new)
            if text.endswith("\ufffd"):  # the character's first bytes only: the next token may complete it
                continue
            yield text[len(written) :]
            written = text
        text = bundle.encoder.decode(new)
        if len(text) > len(written):
            yield text[len(written) :]


def _new_tokens(
    bundle: Bundle,
    prompt: str,
    tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    cache: bool = True,
) -> Iterator[int]:
    """The sampled token ids after `prompt`, the options checked first (one-line errors)."""
    wrong = options_error(tokens, temperature, top_k, seed)
    if wrong:
        raise UserError(f"generate: {wrong}")
    block = bundle.model.block  # the model reads its context, the last `block` tokens: only those are encoded
    kept = prompt[-block * MAX_TOKEN_CHARS :] if bundle.encoder.kind == "bpe" else prompt[-block:]
    ids = bundle.encoder.encode(kept, "prompt")[-block:]
    if not ids:
        raise UserError("prompt: empty; give at least one character (e.g. a newline)")
    return stream(bundle.model, ids, tokens, temperature, top_k, seed, cache)


def _read_windows(corpus: Corpus, path: Path) -> tuple[TensorSet, float, int]:
    """A text file (read once) as windows of `corpus`'s context, its characters per token, and the characters
    left out (never seen by the tokenizer)."""
    if not path.exists():
        raise UserError(f"{path}: data not found; give a text file")
    text = read_text(path)
    kept = corpus.known(text)
    ids = torch.tensor(corpus.encode(kept), dtype=torch.long)
    scored = windows(ids, corpus.block, corpus.block)
    if not len(scored):
        raise UserError(f"{path}: fewer than {corpus.block + 1} tokens; give a longer text")
    return scored, len(kept) / len(ids), len(text) - len(kept)


def _scores(task: Task, model: torch.nn.Module, encoder: Corpus, part: TensorSet) -> dict[str, Any]:
    """The metrics of `part` (windows), its characters counted by decoding its targets."""
    chars = len(encoder.decode(part.target.flatten().tolist()))
    return language_metrics(model, task, part, chars / max(1, part.target.numel()))


def _chars_per_token(data: Prepared, split: str) -> float:
    return data.report["characters"][split] / max(1, data.report["tokens"][split])


def _first_line(data: Prepared) -> str:
    """A prompt for the bundle's sample: the first line of the validation (else training) text."""
    first = data.val if len(data.val) else data.train
    text = data.encoder.decode(first.inputs["tokens"][0].tolist())
    return text.split("\n", 1)[0] + "\n" if "\n" in text else text[:1]


TASKS.register("generate_text")(GenerateText("generate_text", "accuracy", chunk=32))
