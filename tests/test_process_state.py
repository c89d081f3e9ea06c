"""A run leaves the calling process as it found it: its thread count, its random state, torch's determinism
setting, and the tokenizers other code shares."""

from __future__ import annotations

import torch

import sw2
from sw2.data.text import load_tokenizer, token_ids, train_tokenizer
from sw2.spec import TextSpec


def test_training_leaves_threads_random_state_and_determinism_alone(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    spec = {"data": {"source": "package", "name": "iris"}, "model": {"name": "mlp"},
            "train": {"epochs": 3, "threads": 2, "seed": 7}}  # fmt: skip
    sw2.train(spec, tmp_path / "b")
    assert torch.get_num_threads() == 1
    assert torch.equal(torch.get_rng_state(), state), "the global random state is the caller's"
    assert not torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(before)


def test_cutting_texts_does_not_change_the_shared_tokenizer():
    texts = [" ".join(f"word{i % 50}" for i in range(200)) for _ in range(4)]
    state = train_tokenizer(texts, TextSpec(vocab_size=200))
    full = len(load_tokenizer(state).encode(texts[0]).ids)
    assert token_ids(state, texts, 16).shape == (4, 16)
    assert len(load_tokenizer(state).encode(texts[0]).ids) == full > 16
