"""The bundle: a folder that holds a trained model and everything needed to use it.

    model.safetensors   weights (no pickle)         model.json      architecture name + kwargs
    preprocess.json     encoder state               spec.yaml       the resolved spec
    metrics.json        test/val metrics, baseline  history.jsonl   one line per epoch
    (a language model: preprocess.json holds its tokenizer, and samples.txt what it wrote)
    fingerprint.json    data hash, sizes, versions  curves.png, confusion.png, tensorboard/
    provenance.json     where its data came from, signed by the user's sw2 (sw2.provenance)
    what_the_net_sees.png|csv, tests.xml (model tests), lr_finder.png (lr: auto)
    report.html         the run report, one self-contained page (sw2.run_report)

A bundle is written into a temporary folder and renamed into place, so a failed run never leaves a
half-written bundle nor damages an older one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from pydantic import ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from sw2.data.corpus import Corpus
from sw2.data.encode import Encoder
from sw2.data.examples import Examples
from sw2.data.images import IMAGE_SUFFIXES, decode
from sw2.data.sources import read_table
from sw2.data.sources.sniff import decodes, encoding_of, sample
from sw2.data.sources.tables import row_ids
from sw2.errors import UserError
from sw2.files import within
from sw2.models import build
from sw2.outputs import BUNDLE_FILES, MANIFEST, REQUIRED, check_replaceable, manifest
from sw2.plugins import BACKENDS
from sw2.spec import DataSpec, Spec, parse_spec
from sw2.tasks import TASKS
from sw2.yamlfile import load_yaml


def write_atomic(out: Path, fill: Callable[[Path], None], **replaceable: Any) -> Path:
    """Create `out` by letting `fill` write into a temporary sibling folder, then renaming it into place.
    Only what `check_replaceable` allows is replaced (checked again here: callers check before any work)."""
    check_replaceable(out, **replaceable)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        known = replaceable.get("writes", BUNDLE_FILES)
        (tmp / MANIFEST).write_text(json.dumps(manifest(tmp, known)), encoding="utf-8")  # a later --out may replace
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    moved = out.exists()
    if moved:
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:  # put the older one back: never leave `out` missing
        if moved:
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out


def save(
    folder: Path,
    model: torch.nn.Module,
    arch: dict[str, Any],
    encoder: Encoder | Corpus,
    spec: Spec,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    fingerprint: dict[str, Any],
) -> None:
    """Write the bundle's files into `folder` (already a temporary folder); `arch` is model.json (`architecture`)."""
    save_model(model, str(folder / "model.safetensors"), force_contiguous=True)  # tied weights stored once
    dump = {
        "model.json": arch,
        "preprocess.json": encoder.to_json(),
        "metrics.json": metrics,
        "fingerprint.json": fingerprint,
    }
    for name, obj in dump.items():
        (folder / name).write_text(json.dumps(obj, indent=2, default=str))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))


def architecture(built: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """model.json for a trainable's networks (`Trainable.built`): the registered model's name and kwargs, or
    for several networks each one's under its name (their weights share model.safetensors, prefixed by it)."""
    if len(built) == 1:
        name, kwargs = next(iter(built.values()))
        return {"name": name, "kwargs": kwargs}
    return {"modules": {key: {"name": name, "kwargs": kwargs} for key, (name, kwargs) in built.items()}}


SLACK = 64 << 20  # bytes of buffers a bundle's networks may hold beyond the weights its file holds


def rebuild(arch: dict[str, Any], weights: Path | None = None) -> torch.nn.Module:
    """The untrained network(s) model.json describes. With `weights` (model.safetensors), sized first on the
    meta device, where nothing is allocated: every weight's name and shape must be the file's (its header, read
    alone), and the buffers beyond them at most SLACK bytes more, so a crafted model.json (a width of 10^9)
    cannot make sw2 allocate without bound. A network that cannot be built on the meta device is refused."""
    if weights is not None:
        with torch.device("meta"):
            sized = networks(arch)
        try:
            with safe_open(str(weights), framework="pt") as f:
                held = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
        except (SafetensorError, OSError) as err:
            raise UserError(
                f"{weights}: not a readable safetensors file ({err}); the bundle is damaged: train it again"
            ) from None
        state = sized.state_dict()
        weights_of = dict(sized.named_parameters(remove_duplicate=False))
        # a weight's shape is fixed by model.json; a buffer may take its shape from the file (a GBM's trees)
        wrong = sorted(k for k in held if k not in state or (k in weights_of and tuple(state[k].shape) != held[k]))
        if wrong:
            got = tuple(state[wrong[0]].shape) if wrong[0] in state else None
            raise UserError(
                f"{weights.parent}: model.json does not match the weights in model.safetensors ({wrong[0]}: "
                f"{got} against {held[wrong[0]]}); the bundle is damaged or was edited: train it again"
            )
        same: dict[int, list[str]] = {}
        for name, t in [*weights_of.items(), *sized.named_buffers(remove_duplicate=False)]:
            same.setdefault(id(t), []).append(name)
        alias = {name: names for names in same.values() for name in names}
        # names the file lacks are aliases of what it holds (safetensors keeps one name of a shared tensor) or
        # missing, which loading finds; either way only a few bytes may hide there
        unnamed = sum(
            v.numel() * v.element_size() for k, v in state.items() if not any(a in held for a in alias.get(k, [k]))
        )
        in_file = sum(math.prod(held[k]) * state[k].element_size() for k in held)
        total = sum(t.numel() * t.element_size() for t in [*sized.parameters(), *sized.buffers()])  # shared once
        if unnamed > SLACK or total > in_file + SLACK:
            raise UserError(
                f"model.json: describes networks of {total / 1e6:,.0f} MB, more than model.safetensors' weights; "
                "the bundle is damaged or crafted: train it again"
            )
    return networks(arch)


def networks(arch: dict[str, Any]) -> torch.nn.Module:
    """The network, or the networks by name in a ModuleDict, that model.json describes."""
    if "modules" in arch:
        return torch.nn.ModuleDict({key: build(m["name"], m["kwargs"]) for key, m in arch["modules"].items()})
    return build(arch["name"], arch["kwargs"])


class Bundle:
    """A loaded bundle: `predict`, `predict_proba`, `top`, plus its spec, encoder and metrics."""

    def __init__(self, path: str | Path, backend: str = "torch") -> None:
        """Load the bundle at `path`; `backend` (a name in sw2.plugins.BACKENDS: torch, onnx) runs its network."""
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such bundle folder; give the folder that `sw2 train` wrote")
        missing = [f for f in REQUIRED if not (self.path / f).exists()]
        if missing:
            raise UserError(f"{self.path}: not a complete bundle ({missing[0]} is missing); train it again")
        if not within(self.path, self.path):  # every file sw2 reads from a bundle (or embeds in a report) is its own
            raise UserError(f"{self.path}: holds a link to a file outside the bundle; a bundle must be self-contained")
        self.spec = parse_spec(load_yaml(self.path / "spec.yaml"), str(self.path / "spec.yaml"))
        # a bundle may come from someone else: its spec does not choose where sw2 writes (data.cache_dir)
        self.spec.data = self.spec.data.model_copy(update={"cache_dir": None})
        self.task = TASKS.get(self.spec.task)
        self.encoder = self._part("preprocess.json", self.task.load_encoder)
        self.model = self._part("model.json", lambda arch: rebuild(arch, self.path / "model.safetensors"))
        self._load_weights()
        self.model.eval()
        self.metrics = self._record("metrics.json")
        self.fingerprint = self._record("fingerprint.json")
        self.backend = backend
        self.run = BACKENDS.get(backend)(self)
        """`run(inputs) -> raw outputs`: the encoder's input tensors through the network, on the chosen backend."""

    def _record(self, name: str) -> dict[str, Any]:
        """A JSON object the bundle may hold (metrics, fingerprint): {} if absent."""
        if not (self.path / name).exists():
            return {}
        found = self._json(name)
        if not isinstance(found, dict):
            raise UserError(
                f"{self.path / name}: not a JSON object as sw2 writes it; the bundle is damaged: train it again"
            )
        return found

    def _json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except ValueError as err:  # not UTF-8, not JSON
            raise UserError(
                f"{self.path / name}: not valid JSON ({err}); the bundle is damaged: train it again"
            ) from None

    def _part(self, name: str, make: Callable[[Any], Any]) -> Any:
        """What the JSON file `name` describes (the encoder, the model), or a one-line error if it cannot."""
        state = self._json(name)
        try:
            return make(state)
        except UserError:
            raise
        except Exception as err:  # missing or unexpected keys, wrong types
            raise UserError(
                f"{self.path / name}: not as sw2 writes it ({type(err).__name__}: {err}); the bundle is damaged: "
                f"train it again"
            ) from None

    def _load_weights(self) -> None:
        """model.safetensors into the model built from model.json: strict, every weight present and of its shape."""
        file = self.path / "model.safetensors"
        try:
            load_model(self.model, str(file))
        except (SafetensorError, OSError) as err:
            raise UserError(
                f"{file}: not a readable safetensors file ({err}); the bundle is damaged: train it again"
            ) from None
        except RuntimeError as err:  # missing, unexpected or mis-shaped weights
            detail = " ".join(str(err).split())[:240]
            raise UserError(
                f"{self.path}: model.json does not match the weights in model.safetensors ({detail}); the bundle is "
                f"damaged or was edited: train it again"
            ) from None

    @property
    def classes(self) -> list[Any] | None:
        """A classifier's classes (None for a model without classes)."""
        return getattr(self.encoder, "classes", None)

    @property
    def networks(self) -> list[str]:
        """The names of the networks a bundle of several holds (model.json "modules"); [] for one network."""
        return list(self.model.keys()) if type(self.model) is torch.nn.ModuleDict else []  # as `rebuild` makes it

    # ---- turning user input into examples ----------------------------------------------------
    def examples(self, data: Any, sep: str | None = None, encoding: str | None = None) -> Examples:
        """Examples from a DataFrame, a list of dicts, a CSV/Parquet path, image paths, a folder or an array;
        a file of rows read with `sep` / `encoding` where given (as data.sep / data.encoding), else as
        `reading` finds."""
        self.task.check_use(self, "predict")
        enc = self.encoder
        if isinstance(data, Examples):
            return data
        reader = getattr(self.task, "read_examples", None)  # a task that reads its own kind (sw2.tasks.base)
        own = reader(self, data) if reader is not None else None
        if own is not None:
            return own
        if isinstance(data, pd.DataFrame):
            return Examples(target=np.zeros(len(data)), frame=data.reset_index(drop=True))
        if isinstance(data, np.ndarray | torch.Tensor):
            arr = np.asarray(data, dtype=np.uint8)
            arr = arr[:, None] if arr.ndim == 3 else arr
            return Examples(target=np.zeros(len(arr)), images=arr)
        if isinstance(data, dict):
            return self.examples(pd.DataFrame([data]))
        if isinstance(data, str | Path):
            data = [data]
        items = list(data)
        if items and isinstance(items[0], dict):
            return self.examples(pd.DataFrame(items))
        paths = [Path(p) for p in items]
        if enc.image_shape is None:
            if len(paths) != 1:
                raise UserError("give one CSV or Parquet file of rows to predict")
            sep, encoding = reading(paths[0], self.spec.data, sep, encoding)
            try:
                frame = read_table(paths[0], sep, encoding)
            except UserError as err:  # its advice names data.encoding, which a file to predict does not read
                if "data.encoding" not in str(err):
                    raise
                raise UserError(f"{err}; for a file to predict: sw2 predict --encoding ENC") from None
            rows = self.examples(frame)
            rows.ids = row_ids(frame)  # as the sources number rows: doctor's label_errors.csv and predict agree
            return rows
        files = list(_image_files(paths))
        c, h, w = enc.image_shape
        images = np.stack([decode(f, (h, w), c) for f in files]) if files else np.zeros((0, c, h, w), np.uint8)
        return Examples(target=np.zeros(len(files)), images=images, ids=np.array([str(f) for f in files]))

    # ---- predictions: as the task says --------------------------------------------------------
    def outputs(self, data: Any) -> torch.Tensor:
        examples = self.examples(data)
        return self.run(self.encoder.inputs(examples))

    def predict(self, data: Any) -> np.ndarray:
        """Class labels (classify), values in the target's units (regress): what the task predicts."""
        return self.task.predict(self, data)

    def predict_proba(self, data: Any) -> np.ndarray:
        return self.task.predict_proba(self, data)

    def top(self, data: Any, k: int = 3) -> list[list[tuple[Any, float]]]:
        """For each example, the k most likely classes with their probabilities."""
        probs = torch.from_numpy(self.predict_proba(data))
        p, i = probs.topk(min(k, probs.shape[1]), dim=1)
        classes = self.classes or []
        return [[(classes[j], round(float(q), 4)) for q, j in zip(ps, js)] for ps, js in zip(p.tolist(), i.tolist())]

    def prediction_rows(self, data: Any, top: int = 3) -> list[dict[str, Any]]:
        """The rows of `sw2 predict`'s CSV: id, prediction and what else the task gives (probabilities)."""
        return self.task.prediction_rows(self, data, top)

    def generate(self, prompt: str = "\n", tokens: int = 200, **options: Any) -> str:
        """Text a language model writes after `prompt`: `tokens` new tokens; options as the task's `generate`
        (temperature, top_k, seed, cache)."""
        return self.task.generate(self, prompt, tokens=tokens, **options)

    def sample(self, n: int = 64, classes: Any = None, seed: int = 0) -> torch.Tensor:
        """`n` new images (uint8 tensor, n x C x H x W) from an image generator (task: generate_image);
        `classes`: a class (name or index) or one per image, for a class-conditional model."""
        return self.task.sample(self, n, classes=classes, seed=seed)


def reading(path: Path, data: DataSpec, sep: str | None, encoding: str | None) -> tuple[str | None, str | None]:
    """How to read a new file of rows (sw2 predict): `sep` and `encoding` where given (checked as data.sep and
    data.encoding are), else the training spec's `data.sep` / `data.encoding` where this file is written so
    too, else (None) as the file's first megabyte shows. A spec's encoding is not taken for a file marked by
    a byte-order mark, nor for UTF-8 with non-ASCII text (legacy encodings such as GB18030 decode such bytes
    into other characters without an error), nor where it does not decode the file; the spec's delimiter not
    for a file whose first line does not hold it."""
    if sep is not None or encoding is not None:
        try:
            given = DataSpec(path=str(path), sep=sep, encoding=encoding)
        except ValidationError as err:
            problem = err.errors()[0]
            raise UserError(f"--{problem['loc'][0]}: {problem['msg'].removeprefix('Value error, ')}") from None
        sep, encoding = given.sep, given.encoding
    parquet = path.suffix.lower() in (".parquet", ".pq", ".jsonl", ".json")
    if parquet or not path.is_file() or (sep is not None and encoding is not None):
        return sep or data.sep, encoding or data.encoding
    try:
        head = sample(path)
    except OSError:
        return sep or data.sep, encoding or data.encoding  # read_table says what is wrong
    found = encoding_of(head)
    if encoding is None and data.encoding is not None:
        marked = found in ("utf-8-sig", "utf-16") or (found == "utf-8" and not head.isascii())
        encoding = None if marked or decodes(head, data.encoding) is None else data.encoding
    if sep is None and data.sep is not None:
        text = decodes(head, encoding or found) if (encoding or found) else None
        first = text.splitlines()[0] if text else ""
        sep = data.sep if data.sep in first else None
    return sep, encoding


def _image_files(paths: Iterable[Path]) -> Iterable[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            yield p
        else:
            raise UserError(f"{p}: no such image file or folder")
