"""`train.distill`: the teacher bundle a run learns from, checked against the run and made into the engine's
`DistillStep` (sw2/engine/distill.py).

The teacher must do the same task with the same classes and have been trained on this run's training split
(its fingerprint's data hash): a teacher that saw this run's val or test rows would pass their labels on to
the student, and every held-out figure would flatter it. Its model and preprocessing may differ (a fine-tuned
MiniLM teaching a bag of words). Where it reads exactly the student's inputs and training augments them, it
runs on each augmented batch; otherwise its outputs are computed once per training example, through its own
preprocessing and test-time augmentation, and kept in the user's cache folder (`teacher-outputs/`, keyed by
the teacher's weights and the inputs): a second run with the same teacher and rows (another student, a tune
trial, more copies of which the first ones are the same) reads them instead of running the teacher again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sw2 import log
from sw2.bundle import Bundle
from sw2.data.dataset import Prepared, TensorSet, encode
from sw2.data.examples import Examples
from sw2.engine.augment import augmented
from sw2.engine.distill import Cached, Live, Teacher, Teaching
from sw2.errors import UserError
from sw2.files import cache_dir, write_file
from sw2.spec import Spec

FIELD = "train.distill.teacher"


def load_teacher(spec: Spec, root: Path, data: Prepared) -> Bundle:
    """The teacher bundle `spec` names, refused (UserError naming the field) where it cannot teach this run."""
    assert spec.train.distill is not None
    path = root / spec.train.distill.teacher
    try:
        teacher = Bundle(path)
    except UserError as err:
        raise UserError(f"{FIELD}: {err}") from None
    if teacher.task.name != spec.task:
        raise UserError(
            f"{FIELD}: {path} is a {teacher.task.name} model and this spec's task is {spec.task}; give a teacher of "
            f"the same task"
        )
    ours, theirs = data.encoder.classes, getattr(teacher.encoder, "classes", None)
    if ours != theirs:
        raise UserError(f"{FIELD}: {path} predicts classes {theirs}, this run's are {ours}; give a teacher of these")
    if teacher.fingerprint.get("data_sha256") != data.fingerprint:
        raise UserError(
            f"{FIELD}: {path} was trained on other rows than this spec's training split, so it may have seen this "
            f"run's val or test rows; train the teacher with the same data, data.split and data.limit"
        )
    return teacher


class Contexts:
    """The words seen between each pair of neighbours (and after each word, and before it) in a corpus, with
    repeats: a word drawn from a context is one of the corpus's own words that fit there, as often as they do
    (Tang et al.'s part-of-speech-guided swaps, with the corpus standing in for a tagger)."""

    def __init__(self, texts: Any) -> None:
        self.between: dict[tuple[str, str], list[str]] = {}
        self.after: dict[str, list[str]] = {}
        self.before: dict[str, list[str]] = {}
        for text in texts:
            if not isinstance(text, str):
                continue
            words = ["<s>", *text.split(), "</s>"]
            for left, word, right in zip(words, words[1:-1], words[2:]):
                self.between.setdefault((left, right), []).append(word)
                self.after.setdefault(left, []).append(word)
                self.before.setdefault(right, []).append(word)

    def swap(self, left: str, word: str, right: str, rng: np.random.Generator) -> str:
        """A word of the corpus that came between `left` and `right` (else after `left`, else before `right`)."""
        for seen in (self.between.get((left, right)), self.after.get(left), self.before.get(right)):
            if seen and len(seen) > 1:
                return seen[int(rng.integers(len(seen)))]
        return word


def perturbed(examples: Examples, columns: list[str], seed: int, contexts: dict[str, Contexts]) -> Examples:
    """A copy of `examples` whose text `columns` lose each word with probability 0.1 and swap it for another
    that fits its place with probability 0.1 (`contexts`, of the column's training text), and a quarter of
    them keep only a random n-gram of 1-5 of the words (Tang et al., 2019's transfer set)."""
    rng = np.random.default_rng(seed)

    def one(text: Any, ctx: Contexts) -> Any:
        if not isinstance(text, str):
            return text
        words = text.split()
        padded = ["<s>", *words, "</s>"]
        out = []
        for i, word in enumerate(words):
            u = rng.random()
            if u < 0.1:
                continue
            out.append(ctx.swap(padded[i], word, padded[i + 2], rng) if u < 0.2 else word)
        out = out or words[:1]
        if len(out) > 3 and rng.random() < 0.25:
            n = int(rng.integers(1, min(5, len(out)) + 1))
            start = int(rng.integers(0, len(out) - n + 1))
            out = out[start : start + n]
        return " ".join(out)

    assert examples.frame is not None
    frame = examples.frame.copy()
    for col in columns:
        frame[col] = [one(t, contexts[col]) for t in frame[col]]
    ids = np.array([f"{i}~{seed}" for i in examples.ids])  # type: ignore[union-attr]
    return Examples(examples.target, frame, ids=ids)


def transfer_set(spec: Spec, bundle: Bundle, data: Prepared) -> tuple[list[Examples], TensorSet]:
    """The training rows and `copies` perturbed copies of each: raw (one set per copy) and encoded for the
    student (joined)."""
    d = spec.train.distill
    assert d is not None
    columns = data.encoder.text_columns
    if d.copies and not columns:
        raise UserError("train.distill.copies: perturbed copies are of text columns, and this data has none; set 0")
    frame = data.raw_train.frame
    contexts = {col: Contexts(frame[col]) for col in columns} if d.copies and frame is not None else {}
    raws = [data.raw_train]
    raws += [perturbed(data.raw_train, columns, spec.train.seed + k + 1, contexts) for k in range(d.copies)]
    sets = [data.train] + [encode(data.encoder, r) for r in raws[1:]]
    inputs = {k: torch.cat([t.inputs[k] for t in sets]) for k in data.train.inputs}
    ids = np.concatenate([np.asarray(r.ids) for r in raws])
    return raws, TensorSet(inputs, torch.cat([t.target for t in sets]), ids)


def _fast(bundle: Bundle) -> Bundle:
    """The teacher on ONNX Runtime where it was exported (faster on a CPU, equal to 1e-4), else as it is."""
    if not (bundle.path / "model.onnx").is_file():
        return bundle
    try:
        return Bundle(bundle.path, backend="onnx")
    except (ImportError, UserError):
        return bundle


def teacher_outputs(bundle: Bundle, raws: list[Examples]) -> torch.Tensor:
    """The teacher's outputs on each set of `raws`, joined: read from the user's cache folder where this teacher
    computed them for the same inputs before, else computed (on ONNX Runtime where it was exported) and kept."""
    folder = cache_dir() / "teacher-outputs"
    identity = _identity(bundle)
    fast: Bundle | None = None
    outs = []
    for raw in raws:
        inputs = bundle.encoder.inputs(bundle.examples(raw))
        key = hashlib.sha256(identity)
        for name in sorted(inputs):
            key.update(f"{name}:{inputs[name].dtype}:{tuple(inputs[name].shape)}".encode())
            key.update(inputs[name].contiguous().numpy().tobytes())
        path = folder / f"{key.hexdigest()[:32]}.safetensors"
        out = _read(path, (len(raw), bundle.model.head.out_features))  # every sw2 model has a head
        if out is None:
            fast = fast or _fast(bundle)
            out = fast.run(inputs)
            _keep(path, out)
        outs.append(out)
    return torch.cat(outs)


def _identity(bundle: Bundle) -> bytes:
    """What the teacher's outputs depend on besides the inputs: its weights, its exported graph (which computes
    them where present) and its test-time augmentation."""
    h = hashlib.sha256(f"tta:{bundle.spec.augment.tta}".encode())
    for name, t in sorted(bundle.model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    graph = bundle.path / "model.onnx"
    h.update(graph.read_bytes() if graph.is_file() else b"")
    return h.digest()


def _read(path: Path, shape: tuple[int, int]) -> torch.Tensor | None:
    """Cached outputs of `shape` at `path`, or None (absent, unreadable, of another shape or not finite)."""
    from safetensors.torch import load_file

    try:
        out = load_file(path)["outputs"]
    except Exception:  # absent or damaged: compute again
        return None
    return out.float() if tuple(out.shape) == shape and out.is_floating_point() and out.isfinite().all() else None


def _keep(path: Path, outputs: torch.Tensor) -> None:
    """Write `outputs` to the cache; a cache that cannot be written only costs the next run the teacher's time."""
    from safetensors.torch import save

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, save({"outputs": outputs.contiguous()}))
    except OSError as err:
        log.info(f"sw2: could not keep the teacher's outputs in {path.parent} ({err.strerror}); continuing")


def teaching_for(spec: Spec, bundle: Bundle | None, data: Prepared) -> tuple[Teaching | None, TensorSet]:
    """The teacher of a run with `train.distill` (its `bundle`; None without), and the training set the run
    trains on (with `copies`, the perturbed copies join it)."""
    d = spec.train.distill
    if d is None or bundle is None:
        return None, data.train
    teacher: Teacher
    train = data.train
    same_inputs = bundle.encoder.to_json() == data.encoder.to_json()
    if same_inputs and any(augmented(spec.augment, data.train.inputs)) and not d.copies:
        teacher, how = Live(bundle.model), "on each augmented batch"
    else:
        raw, train = transfer_set(spec, bundle, data)
        teacher, how = Cached(teacher_outputs(bundle, raw)), f"once per training example ({len(train):,} with copies)"
    name = bundle.fingerprint.get("model", "model")
    log.info(f"sw2: distilling from {bundle.path} ({name}), its outputs computed {how}")
    return Teaching(teacher, d.temperature, d.alpha), train
