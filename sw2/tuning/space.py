"""The search space: the spec's `tune:` section, or one chosen here for the task, the model and the data.

A search point is a dict of field paths to values ("train.lr" -> 0.003); `apply` writes it into the spec and
validates the result like any spec. Values that are not numbers or names (a list of widths) travel through
Optuna as their JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import optuna

from sw2.data.dataset import Prepared
from sw2.models import choose
from sw2.plugins import TASKS
from sw2.spec import Choice, Distribution, FloatRange, IntRange, LogRange, Spec, model_options, parse_spec, set_path

BATCH_SIZES = (32, 64, 128, 256)
VOCAB_SIZES = (8000, 16000, 30000)


def default_space(spec: Spec, data: Prepared) -> dict[str, Distribution]:
    """What a search should try for this spec when it names none: the lr a decade either side of the spec's,
    weight decay, the batch size, the epochs (half to twice the spec's), dropout, label smoothing (classify),
    the model's size and options, the text vocabulary and the augmentation of the data's inputs."""
    t, n = spec.train, len(data.train)
    name, kwargs = choose(spec.model, data.encoder, n)
    lr = t.lr if isinstance(t.lr, float) else 1e-3
    space: dict[str, Distribution] = {
        "train.lr": LogRange(log=(lr / 10, lr * 10)),
        "train.weight_decay": LogRange(log=(1e-6, 0.1)),
        "train.dropout": FloatRange(range=(0.0, 0.5)),
    }
    sizes = sorted({b for b in BATCH_SIZES if b <= n // 4} | {t.batch_size})
    if len(sizes) > 1:
        space["train.batch_size"] = Choice(choice=sizes)
    if t.epochs is not None and t.epochs >= 2:
        space["train.epochs"] = IntRange(int=(max(1, round(t.epochs / 2)), round(t.epochs * 2)))
    labels = TASKS.get(spec.task).discrete  # one class label per example
    if labels:
        space["train.label_smoothing"] = FloatRange(range=(0.0, 0.2))
    widths = kwargs.get("widths")
    if widths and "widths" in model_options(name).model_fields:
        space["model.widths"] = Choice(choice=[[max(1, w // 2) for w in widths], list(widths), [w * 2 for w in widths]])
    if name == "bag":
        space["model.ngrams"] = Choice(choice=[1, 2])
        space["model.chars"] = Choice(choice=[None, [2, 5]])
        if labels:
            space["model.weighting"] = Choice(choice=["idf", "nb"])
    if name == "mlp":
        space["model.numeric"] = Choice(choice=["plain", "periodic"])
    inputs = data.train.inputs
    if "text" in inputs and spec.text.tokenizer != "pretrained":
        space["text.vocab_size"] = Choice(choice=sorted({*VOCAB_SIZES, spec.text.vocab_size}))
        space["augment.token_drop"] = FloatRange(range=(0.0, 0.2))
    if "image" in inputs:
        space["augment.translate"] = Choice(choice=[0, 1, 2])
    return space


def searched(spec: Spec, data: Prepared) -> dict[str, Distribution]:
    """The spec's own space, or the default one, checked like a spec's `tune:` (every value makes a valid spec)."""
    if spec.tune is not None:
        return spec.tune
    raw = spec.model_dump(mode="json", exclude={"tune"})
    space = TASKS.get(spec.task).search_space(spec, data) or default_space(spec, data)
    checked = parse_spec({**raw, "tune": {path: d.model_dump() for path, d in space.items()}}, "sw2's default space")
    assert checked.tune is not None
    return checked.tune


def scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def suggest(trial: optuna.Trial, space: dict[str, Distribution]) -> dict[str, Any]:
    """One search point, drawn by the trial's sampler."""
    point: dict[str, Any] = {}
    for path, d in space.items():
        if isinstance(d, LogRange):
            point[path] = trial.suggest_float(path, *d.log, log=True)
        elif isinstance(d, FloatRange):
            point[path] = trial.suggest_float(path, *d.range)
        elif isinstance(d, IntRange):
            point[path] = trial.suggest_int(path, *d.int)
        elif all(scalar(c) for c in d.choice):
            point[path] = trial.suggest_categorical(path, d.choice)
        else:
            point[path] = json.loads(trial.suggest_categorical(path, [json.dumps(c) for c in d.choice]))
    return point


def decoded(params: dict[str, Any], space: dict[str, Distribution]) -> dict[str, Any]:
    """A finished trial's params as spec values (JSON text of non-scalar choices read back)."""
    out = {}
    for path, value in params.items():
        d = space.get(path)
        plain = not isinstance(d, Choice) or all(scalar(c) for c in d.choice)
        out[path] = value if plain else json.loads(value)
    return out


def apply(spec: Spec, point: dict[str, Any]) -> Spec:
    """`spec` with the search point written in (and no `tune:`), validated."""
    raw = spec.model_dump(mode="json", exclude={"tune"})
    for path, value in point.items():
        raw = set_path(raw, path, value)
    return parse_spec(raw, "search point")
