"""Language models (task: generate_text): tokenizers, training, reload, sampling with and without the
cache, `sw2 generate` and `sw2 eval` on text, and the bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sw2
from sw2.data.corpus import Corpus, windows
from sw2.models.gpt import GPT, CharRNN
from tests.conftest import need_dataset, sw2_here, table_cells, write_spec

WORDS = "the king and queen of fair verona speak to my lord good night sweet prince".split()


def verse(n_lines: int, seed: int = 0) -> str:
    """Synthetic verse: a speaker line, then lines of words in a fixed order from a random start."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_lines):
        if i % 4 == 0:
            out.append(["ROMEO:", "JULIET:"][int(rng.integers(2))])
        start = int(rng.integers(len(WORDS)))
        out.append(" ".join(WORDS[(start + j) % len(WORDS)] for j in range(6)) + ",")
    return "\n".join(out) + "\n"


def lm_spec(path: str, **model) -> dict:
    return {
        "name": "verse",
        "task": "generate_text",
        "data": {"path": path, "split": {"val": 0.1, "test": 0.1}},
        "text": {"tokenizer": "char", "max_tokens": 48},
        "model": {"name": "gpt", "widths": [64], "layers": 2, "heads": 4, **model},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.003, "weight_decay": 0.1, "grad_clip": 1.0},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    (folder / "verse.txt").write_text(verse(3000), encoding="utf-8")
    spec = lm_spec("verse.txt")
    latency = {"kind": "latency", "max_p95_ms": 60_000}  # the check runs; no bound on this machine's speed
    spec["tests"] = [{"kind": "metric", "metric": "bits_per_char", "max": 1.5}, latency]
    return sw2.train(write_spec(folder, spec), folder / "bundle", verbose=False), folder


def test_tokenizers_round_trip_through_json():
    text = "First Citizen:\nBefore we proceed — any further, hear me speak.\n\n  Ünïcode ok?\t"
    char = Corpus.fit(text, "char", 0, 16)
    again = Corpus.from_json(char.to_json())
    assert again.decode(again.encode(text)) == text and again.vocab_size == len(set(text))
    bpe = Corpus.fit(verse(400) + text, "bpe", 300, 16)
    again = Corpus.from_json(bpe.to_json())
    ids = again.encode(text)
    assert again.decode(ids) == text  # byte-level: lossless, even for characters it saw rarely
    assert len(ids) < len(text.encode())  # merges learned
    assert again.decode(again.encode("zzz ÿ 漢字")) == "zzz ÿ 漢字"  # unseen characters too


def test_windows_are_shifted_views():
    ids = torch.arange(20)
    w = windows(ids, 5, 3)
    assert len(w) == 5 and torch.equal(w.target, w.inputs["tokens"] + 1)
    assert w.inputs["tokens"].untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()  # no copy
    assert len(windows(ids, 30, 30)) == 0


def test_gpt_learns_reloads_identically_and_writes_samples(trained):
    bundle, folder = trained
    val = bundle.metrics["val"]
    assert val["nats_per_char"] < 0.6 * val["baseline"]["nats_per_char"]  # far better than unigram
    assert val["bits_per_char"] == pytest.approx(val["nats_per_char"] / np.log(2), abs=1e-3)
    assert (bundle.path / "samples.txt").read_text().strip()
    checks = {v["check"]: v["status"] for v in bundle.metrics["preflight"]["verdicts"]}
    assert checks["loss at init"] == checks["overfit one batch"] == checks["input-independent baseline"] == "PASS"
    again = sw2.load(bundle.path)
    batch = {"tokens": torch.randint(0, again.encoder.vocab_size, (3, 48))}
    assert torch.equal(bundle.model(batch), again.model(batch))
    a = bundle.generate("ROMEO:\n", 60, temperature=0.8, top_k=5, seed=3)
    assert a == again.generate("ROMEO:\n", 60, temperature=0.8, top_k=5, seed=3) and len(a) == 60
    assert a != again.generate("ROMEO:\n", 60, temperature=0.8, top_k=5, seed=4)


def test_language_model_has_report_model_tests_and_sw2_test(trained):
    """The one pipeline gives a language model what a classifier has: report.html (curves, samples, per-token
    loss), model tests in tests.xml and metrics.json, and `sw2 test` on the bundle."""
    bundle, folder = trained
    page = (bundle.path / "report.html").read_text()
    for anchor in ("summary", "metrics", "curves", "samples", "tokens", "tests", "preflight", "data", "spec"):
        assert f'id="{anchor}"' in page, anchor
    assert "mean loss by position in the context" in page and "bits_per_char" in page
    tests = {t["name"]: t for t in bundle.metrics["tests"]}
    assert tests["bits_per_char"]["passed"] and tests["bits_per_char"]["value"] < 1.5, tests
    assert 'failures="0"' in (bundle.path / "tests.xml").read_text()
    assert (bundle.path / "what_the_net_sees.txt").read_text().startswith("--- window 1 ---")
    junit = folder / "sw2-test.xml"
    r = sw2_here("test", str(bundle.path), "--spec", str(folder / "spec.yaml"), "--junit", str(junit))  # the text
    assert r.returncode == 0 and "bits_per_char" in r.stdout, r.stdout + r.stderr  # lies outside the bundle
    assert 'failures="0"' in junit.read_text()
    again = sw2.report(bundle, out=folder / "again.html", spec_from=folder / "spec.yaml")  # the bundle's tokenizer
    page = again.read_text()
    assert "mean loss by position in the context" in page and "fingerprint differs" not in page


def test_kv_cache_gives_what_recomputing_gives_within_the_context(trained):
    bundle, _ = trained
    prompt = "JULIET:\nthe king"
    cached = bundle.generate(prompt, 48 - len(prompt), temperature=0, cache=True)
    assert cached == bundle.generate(prompt, 48 - len(prompt), temperature=0, cache=False)
    assert " " in cached  # it writes words
    longer = bundle.generate(prompt, 150, temperature=0, cache=True)  # past the context: the window slides
    assert len(longer) == 150 and longer.startswith(cached)


def test_cache_logits_match_full_forward():
    torch.manual_seed(0)
    for model in (GPT(30, 16, 32, 2, 4), CharRNN(30, 16, 32, 2, "lstm")):
        model.eval()
        ids = torch.randint(0, 30, (1, 12))
        full = model({"tokens": ids})
        logits, state = model.step(ids[:, :5], None)
        assert torch.allclose(logits, full[:, 4], atol=1e-5)
        for t in range(5, 12):
            logits, state = model.step(ids[:, t : t + 1], state)
            assert torch.allclose(logits, full[:, t], atol=1e-5)


def test_generate_and_eval_from_the_command_line(trained):
    bundle, folder = trained
    r = sw2_here("generate", str(bundle.path), "--prompt", "ROMEO:", "--tokens", "30", "--top-k", "3", "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ROMEO:") and len(r.stdout) >= 36 and "tokens/s" in r.stderr
    r = sw2_here("eval", str(bundle.path), "--data", str(folder / "verse.txt"), "--json", str(folder / "eval.json"))
    assert r.returncode == 0, r.stderr
    got = json.loads((folder / "eval.json").read_text())
    assert f"evaluation ({got['tokens_scored']:,} tokens)" in r.stdout and got["tokens_scored"] > 90_000  # all
    for metric in ("nats_per_char", "bits_per_char", "perplexity", "accuracy"):  # the file holds what is shown
        assert table_cells(r.stdout, metric) == [f"{got[metric]:.4f}"], metric
    val = bundle.metrics["val"]  # the whole file (mostly training text) scores about as well as the val split
    assert abs(got["nats_per_char"] - val["nats_per_char"]) < 0.1 and got["accuracy"] > 0.8, (got, val)
    assert sw2.evaluate(bundle, folder / "verse.txt")["nats_per_char"] == pytest.approx(got["nats_per_char"], abs=1e-6)


def test_prompt_outside_the_vocabulary_is_exit_2(trained):
    bundle, _ = trained
    r = sw2_here("generate", str(bundle.path), "--prompt", "ROMEO: ¿qué?")
    assert r.returncode == 2 and "prompt" in r.stderr and "'¿'" in r.stderr and "Traceback" not in r.stderr
    r = sw2_here("generate", str(bundle.path), "--prompt", "")
    assert r.returncode == 2 and "prompt: empty" in r.stderr
    with pytest.raises(sw2.UserError, match="language model"):
        bundle.predict(["x"])
    r = sw2_here("predict", str(bundle.path), "rows.csv")  # what the task declares: it predicts no examples
    assert r.returncode == 2 and "it takes no examples; use sw2 generate" in r.stderr, r.stderr
    folder = bundle.path.parent
    r = sw2_here("compress", str(bundle.path), "--quantize", "int8", "--spec", str(folder / "spec.yaml"),
                 "--out", str(folder / "small"))  # fmt: skip
    assert r.returncode == 2 and "sw2 compress takes a model of examples" in r.stderr, r.stderr
    assert not (bundle.path / "reference.json").exists()  # drift is watched on examples served


def test_charrnn_and_bpe_train_and_reload(tmp_path):
    (tmp_path / "verse.txt").write_text(verse(1500, seed=1), encoding="utf-8")
    spec = lm_spec("verse.txt", name="charrnn", widths=[64], layers=1, cell="lstm")
    spec["model"].pop("heads")
    spec["text"] = {"tokenizer": "bpe", "vocab_size": 300, "max_tokens": 24, "stride": 12}
    spec["train"]["lr"] = "auto"  # the lr finder sweeps a language model too
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "bundle", verbose=False, check=False)
    assert bundle.spec.train.lr == bundle.metrics["lr_finder"]["suggestion"] > 0
    val = bundle.metrics["val"]
    assert val["chars_per_token"] > 1.5 and val["nats_per_char"] < val["baseline"]["nats_per_char"]
    assert val["nats_per_char"] == pytest.approx(val["nats_per_token"] / val["chars_per_token"], abs=1e-3)
    again = sw2.load(bundle.path)
    assert bundle.generate("ROMEO:", 20, seed=1) == again.generate("ROMEO:", 20, seed=1)


@pytest.mark.parametrize(
    ("change", "text", "message"),
    [
        ({}, "", "training text is empty"),
        ({}, b"caf\xe9 au lait\n" * 200, "not UTF-8"),
        ({"text": {"tokenizer": "char", "max_tokens": 200}}, "short text\n" * 30, "fewer than a window"),
        ({"model": {"name": "bag"}}, "x\n" * 100, "generate_text takes a language model"),
        ({"text": {"tokenizer": "wordpiece"}}, "x\n" * 100, "char or bpe"),
        ({"task": "classify"}, "x\n" * 100, "is a language model"),
        ({"tests": [{"kind": "invariance", "transform": "noise"}]}, "x\n" * 600, "use metric or latency tests"),
        (
            {"tests": [{"kind": "metric", "metric": "r2", "min": 0.5}]},
            "x\n" * 100,
            "not a metric of task generate_text",
        ),
    ],
)
def test_bad_language_model_inputs_are_exit_2_and_write_nothing(tmp_path, change, text, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    spec = {**lm_spec("corpus.txt"), **change}
    r = sw2_here("train", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_tinyshakespeare_char_gpt_learns(tmp_path):
    """A short run on the real corpus (the first 200,000 characters) must beat what counting characters gets.
    On the last 5% of the file a character bigram fitted on the same text scores 2.63 nats/char and a trigram
    2.32 (add-k smoothing, the best k); this model reached 2.16 and 2.15 (seeds 0, 1), so the bound is 2.25."""
    text = need_dataset("tinyshakespeare") / "input.txt"
    spec = lm_spec(str(text))
    spec["data"] = {"path": str(text), "split": {"val": 0.05, "test": 0.0}, "limit": 200_000}
    spec["train"] = {**spec["train"], "epochs": 4, "lr": 0.006, "warmup": 0.05}
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "bundle", verbose=False, check=False)  # tested above
    val = bundle.metrics["val"]
    assert val["tokens_scored"] > 50_000  # the last 5% of the file: 55,769 characters
    assert val["nats_per_char"] < 2.25 and val["baseline"]["nats_per_char"] > 3.2, val


def test_pre_flight_without_a_val_split_holds_out_the_end_of_the_text(tmp_path):
    (tmp_path / "verse.txt").write_text(verse(3000), encoding="utf-8")
    spec = lm_spec("verse.txt")
    spec["data"]["split"]["val"] = 0
    got = {v.check: v for v in sw2.check(write_spec(tmp_path, spec))}["input-independent baseline"]
    assert got.status == "PASS" and "held-out training rows" in got.message, got
