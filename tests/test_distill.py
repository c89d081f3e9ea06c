"""Knowledge distillation (`train.distill`): a student learns from a teacher bundle's outputs, the teacher run
on each augmented batch or its outputs computed once; with alpha 1 the student follows the teacher, not the
labels; a teacher that cannot teach the run is refused in one line."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import sw2
import sw2.teacher
from sw2.bundle import Bundle
from sw2.data.dataset import TensorSet
from sw2.data.examples import Examples
from sw2.engine import fit
from sw2.engine.distill import Cached, Teaching
from sw2.spec import parse_spec
from sw2.tasks import TASKS
from sw2.teacher import Contexts, perturbed
from tests.conftest import ROOT, sw2_here, write_spec
from tests.test_bad_input import check_refused

DIGITS_DATA = {"source": "package", "name": "digits", "split": {"val": 0.1, "test": 0.2, "seed": 0}}  # the demo's


def student(teacher: Path, **train) -> dict:
    """A small conv net on the demo's digits split, learning from `teacher`."""
    return {
        "name": "student",
        "data": DIGITS_DATA,
        "task": "classify",
        "model": {"name": "convnet", "widths": [8, 16]},
        "train": {
            "epochs": 12,
            "batch_size": 64,
            "optimizer": "adamw",
            "lr": 0.006,
            "distill": {"teacher": str(teacher)},
        }
        | train,
    }


def test_student_learns_from_a_teacher_on_augmented_batches(digits: Bundle, tmp_path: Path, caplog) -> None:
    spec = student(digits.path) | {"augment": {"translate": 1}}
    with caplog.at_level(logging.INFO, logger="sw2"):
        b = sw2.train(spec, tmp_path / "student", check=False)
    assert "computed on each augmented batch" in caplog.text
    assert b.metrics["test"]["accuracy"] >= 0.85, b.metrics["test"]["accuracy"]
    assert b.spec.train.distill is not None and b.spec.train.distill.teacher == str(digits.path)


def test_teacher_outputs_computed_once_without_augmentation(digits: Bundle, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="sw2"):
        b = sw2.train(student(digits.path, distill={"teacher": str(digits.path), "alpha": 0.7}), tmp_path / "s")
    assert "computed once per training example" in caplog.text
    assert b.metrics["test"]["accuracy"] >= 0.9


def test_alpha_one_follows_the_teacher_not_the_labels() -> None:
    """Random labels, and a teacher whose classes are a fixed linear map of the inputs: with alpha 1 the
    student agrees with the teacher and knows nothing of the labels."""
    g = torch.Generator().manual_seed(0)
    x, labels = torch.randn(1024, 8, generator=g), torch.randint(0, 3, (1024,), generator=g)
    teacher_out = 3 * x @ torch.randn(8, 3, generator=g)

    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(8, 3)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.layer(batch["x"])

    spec = parse_spec(
        {"data": DIGITS_DATA, "train": {"epochs": 30, "batch_size": 64, "lr": 0.03, "threads": 1, "warmup": 0}}
    )
    task, model = TASKS.get("classify"), Linear()
    data = TensorSet({"x": x}, labels, None)
    teaching = Teaching(Cached(teacher_out), temperature=2.0, alpha=1.0)
    empty = TensorSet({"x": x[:0]}, labels[:0], None)
    trainable = task.trainable(spec, None, train=data, val=empty, model=("linear", {}, model), teaching=teaching)
    fit(trainable, spec, verbose=False)
    with torch.no_grad():
        predicted = model({"x": x}).argmax(1)
    assert (predicted == teacher_out.argmax(1)).float().mean() > 0.95
    assert (predicted == labels).float().mean() < 0.45  # chance is 1/3


def test_text_student_learns_from_teacher_on_perturbed_copies(
    tmp_path: Path, own_cache: Path, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = {
        "name": "rt",
        "data": {"source": "package", "name": "rotten_tomatoes", "split": {"val": 0.1, "test": 0.2, "seed": 0},
                 "limit": 1500},
        "task": "classify",
        "text": {"tokenizer": "word", "vocab_size": 5000, "max_tokens": 48},
        "model": {"name": "bag"},
        "train": {"epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": 8},
    }  # fmt: skip
    teacher = sw2.train(rt, tmp_path / "teacher", check=False)
    student = {**rt, "train": {**rt["train"], "epochs": 4, "distill": {"teacher": str(teacher.path), "copies": 2}}}
    with caplog.at_level(logging.INFO, logger="sw2"):
        b = sw2.train(student, tmp_path / "student", check=False)
    assert "(4,500 with copies)" in caplog.text  # the 1,500 rows and two copies of each
    assert b.metrics["test"]["accuracy"] >= 0.6
    kept = sorted((own_cache / "teacher-outputs").glob("*.safetensors"))
    assert len(kept) == 3  # the teacher's outputs on the rows and on each copy, in the user's cache

    # A second student with one copy more runs the teacher on that copy only; a damaged entry is computed again.
    kept[0].write_bytes(b"not safetensors")
    examples_run: list[int] = []
    real_fast = sw2.teacher._fast

    def counted(bundle: Bundle) -> Bundle:
        fast = real_fast(bundle)
        run = fast.run
        fast.run = lambda inputs: examples_run.append(len(inputs["text"])) or run(inputs)
        return fast

    monkeypatch.setattr(sw2.teacher, "_fast", counted)
    student["train"]["distill"]["copies"] = 3
    again = sw2.train(student, tmp_path / "student-3", check=False)
    assert examples_run == [1500, 1500]  # the damaged set and the new copy; two sets read from the cache
    assert len(list((own_cache / "teacher-outputs").glob("*.safetensors"))) == 4
    assert again.metrics["test"]["accuracy"] >= 0.6


def test_perturbed_copies_drop_swap_and_cut_words() -> None:
    """A copy drops about a tenth of the words, swaps about a tenth for a word the corpus has in that place,
    and cuts about a quarter of the rows to an n-gram of at most five words."""
    adjectives = ("long", "dull", "fine", "bold")
    texts = [f"the {adj} film was {verdict} ." for adj in adjectives for verdict in ("good", "bad")] * 100
    contexts = Contexts(texts)
    assert sorted(set(contexts.between[("the", "film")])) == sorted(adjectives)
    examples = Examples(np.zeros(len(texts)), pd.DataFrame({"text": texts}), ids=np.arange(len(texts)).astype(str))
    copy = perturbed(examples, ["text"], seed=1, contexts={"text": contexts})
    rows = [t.split() for t in copy.frame["text"]]
    whole = [r for r in rows if r[0] == "the" and len(r) == 6]  # nothing dropped, not cut
    assert any(r[1] != o.split()[1] for r, o in zip(rows, texts) if len(r) == 6 and r[0] == "the")  # swapped
    assert all(r[1] in adjectives and r[4] in ("good", "bad") for r in whole)  # in place
    cut = sum(len(r) <= 5 for r in rows) / len(rows)
    assert 0.3 < cut < 0.7  # a quarter cut, and rows that lost a word
    assert copy.ids[0] == "0~1" and copy.frame["text"].tolist() != texts


def test_a_cached_teacher_output_of_another_shape_or_not_finite_is_computed_again(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from sw2.teacher import _read

    path = tmp_path / "entry.safetensors"
    save_file({"outputs": torch.zeros(4, 2)}, path)
    assert _read(path, (4, 2)) is not None
    assert _read(path, (4, 3)) is None and _read(path, (5, 2)) is None  # another teacher's width, other rows
    save_file({"outputs": torch.full((4, 2), float("nan"))}, path)
    assert _read(path, (4, 2)) is None


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return sw2.train(ROOT / "examples" / "diabetes.yaml", tmp_path_factory.mktemp("runs") / "diabetes", check=False)


def test_regression_student_learns_from_a_teacher(diabetes: Bundle, tmp_path: Path) -> None:
    spec = sw2.api.resolve_spec(ROOT / "examples" / "diabetes.yaml")[0].model_dump()
    spec["train"]["distill"] = {"teacher": str(diabetes.path), "alpha": 0.5}
    b = sw2.train(spec, tmp_path / "student", check=False)
    assert b.metrics["test"]["r2"] >= 0.3


def test_a_teacher_that_cannot_teach_is_refused(digits: Bundle, diabetes: Bundle, tmp_path: Path) -> None:
    for case in ("task", "split", "missing", "alpha", "copies", "lm"):
        (tmp_path / case).mkdir()
    check_refused(tmp_path / "task", student(diabetes.path), "train.distill.teacher", "regress", "same task")
    other_split = student(digits.path) | {"data": {**DIGITS_DATA, "split": {"val": 0.1, "test": 0.2, "seed": 1}}}
    check_refused(tmp_path / "split", other_split, "train.distill.teacher", "other rows", "data.split")
    check_refused(tmp_path / "missing", student(tmp_path / "nowhere"), "train.distill.teacher", "no such bundle")
    bad_alpha = student(digits.path, distill={"teacher": str(digits.path), "alpha": 1.5})
    check_refused(tmp_path / "alpha", bad_alpha, "train.distill.alpha")
    copies = student(digits.path, distill={"teacher": str(digits.path), "copies": 2})
    check_refused(tmp_path / "copies", copies, "train.distill.copies", "text")
    language = {
        "data": {"path": "input.txt"},
        "task": "generate_text",
        "text": {"tokenizer": "char"},
        "model": {"name": "gpt"},
        "train": {"distill": {"teacher": str(digits.path)}},
    }
    check_refused(tmp_path / "lm", language, "train.distill", "cannot learn from a teacher")


def test_out_never_replaces_the_teacher(digits: Bundle, tmp_path: Path) -> None:
    """--out naming the teacher's own folder is refused before any work."""
    teacher = shutil.copytree(digits.path, tmp_path / "teacher")
    spec = write_spec(tmp_path, student(teacher))
    res = sw2_here("train", str(spec), "--out", str(teacher), "--quiet", cwd=tmp_path)
    assert res.returncode == 2 and "train.distill.teacher" in res.stderr, res.stderr
    assert (teacher / "model.safetensors").read_bytes() == (digits.path / "model.safetensors").read_bytes()
