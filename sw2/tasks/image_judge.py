"""The judge of task generate_image: a classifier sw2 trains on the training split of the images a generator
learns (examples/mnist.yaml's convnet recipe without label smoothing), cached in the sw2 cache by the data's
fingerprint so that every model of the same data is judged by the same one; never updated after.

Images without classes get a judge of a pretext task instead (Gidaris et al., 2018): the same convnet learns
which way each training image was turned (0, 90, 180 or 270 degrees; a non-square image 0 or 180), which it
can only do by learning the shapes that make the images; its features give the Fréchet distance, and there are
no class scores."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.evaluation import image_scores
from sw2.files import cache_dir
from sw2.spec import AugmentSpec, Spec, TrainSpec
from sw2.tasks import TASKS

JUDGE_MODEL = {"name": "convnet", "widths": [16, 32, 64], "activation": "relu"}  # examples/mnist.yaml's
# examples/mnist.yaml's recipe without label smoothing (a smoothed judge is never 90% sure of anything); at least
# JUDGE_STEPS steps (3 epochs of MNIST's 55,000 images are 1,290), at most 30 epochs
JUDGE_TRAIN = {"batch_size": 128, "optimizer": "nesterov", "lr": 0.2, "momentum": 0.9, "weight_decay": 5e-4,
               "warmup": 0.2}  # fmt: skip
JUDGE_STEPS = 1200


def train_judge(spec: Spec, data: Any) -> tuple[nn.Module, tuple[str, dict[str, Any]]]:
    """The judge: examples/mnist.yaml's convnet trained on the training split (fp32, deterministic) to tell
    the classes apart (or, without classes, the turns), cached in the sw2 cache by the data's fingerprint, so
    another model of the same data is judged by the same one."""
    from safetensors.torch import load_file, save_file

    from sw2.engine.loop import fit
    from sw2.model_options import ConvNetOptions

    learns = data if labelled(data) else turned(data, spec.train.seed)
    epochs = judge_epochs(learns)
    judge_train = TrainSpec(**JUDGE_TRAIN, epochs=epochs, seed=spec.train.seed, deterministic=True, precision="fp32",
                            device=spec.train.device, threads=spec.train.threads)  # fmt: skip
    judge = {"task": "classify", "model": ConvNetOptions(**JUDGE_MODEL), "train": judge_train, "augment": AugmentSpec()}
    judge_spec = spec.model_copy(update=judge)
    what = [data.fingerprint, JUDGE_MODEL, JUDGE_TRAIN, epochs, spec.train.seed, list(data.encoder.image_shape)]
    key = hashlib.sha256(json.dumps(what + ([] if learns is data else ["turns"])).encode()).hexdigest()[:24]
    folder = cache_dir() / "judges"
    weights, about = folder / f"{key}.safetensors", folder / f"{key}.json"
    with torch.random.fork_rng(devices=[]):  # the same initial weights in every process
        torch.manual_seed(spec.train.seed)
        trainable = TASKS.get("classify").trainable(judge_spec, learns)
    name, kwargs = trainable.built["model"]
    net = trainable.model
    if weights.is_file() and about.is_file():
        try:
            net.load_state_dict(load_file(weights))
            return net.eval().requires_grad_(False), (name, kwargs)
        except (RuntimeError, OSError, ValueError):
            pass  # a damaged cache entry: train again
    net = fit(trainable, judge_spec, verbose=False).model.requires_grad_(False)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(f".tmp{os.getpid()}")  # another process may train the same judge at once
    about_tmp = about.with_suffix(f".tmp{os.getpid()}")
    about_tmp.write_text(json.dumps({"model": name, "kwargs": kwargs}), encoding="utf-8")
    about_tmp.replace(about)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
    tmp.replace(weights)
    return net.eval(), (name, kwargs)


def labelled(data: Any) -> bool:
    """The images have classes for the judge to learn (2 or more); without them it learns the turns."""
    return len(data.encoder.classes or []) >= 2


def turns(shape: Any) -> list[int]:
    """The quarter turns an image of `shape` (C, H, W) can take and keep its shape."""
    return [0, 1, 2, 3] if shape[-1] == shape[-2] else [0, 2]


def turn(images: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Each image turned by its own number of quarter turns `k` (counter-clockwise)."""
    out = images.clone()
    for q in k.unique().tolist():
        at = k == q
        out[at] = torch.rot90(images[at], q, dims=(-2, -1))
    return out


def turned(data: Any, seed: int) -> Any:
    """The pretext data of images without classes: each training image turned by a seeded random choice of
    `turns`, the number of turns its label; val every image in every turn. Same encoder, classes the turns."""
    options = turns(data.encoder.image_shape)
    gen = torch.Generator().manual_seed(seed + 3)
    encoder = copy.copy(data.encoder)
    encoder.target_codec = copy.copy(data.encoder.target_codec)
    train = every_turn(data.train, options, gen)
    encoder.target_codec.classes = [f"{90 * q} degrees" for q in options]
    encoder.target_codec.class_counts = torch.bincount(train.target, minlength=len(options)).tolist()
    return SimpleNamespace(encoder=encoder, train=train, val=every_turn(data.val, options),
                           test=every_turn(data.test, options), fingerprint=data.fingerprint)  # fmt: skip


def every_turn(ts: TensorSet, options: list[int], gen: torch.Generator | None = None) -> TensorSet:
    """`ts`'s images turned, labelled by their turn: each in every one of `options`, or (with `gen`) each in
    one drawn at random."""
    images = ts.inputs["image"]
    if gen is None:
        k = torch.tensor(options).repeat_interleave(len(images))
        images = images.repeat(len(options), *[1] * (images.dim() - 1))
        ids = np.tile(ts.ids, len(options))
    else:
        k = torch.tensor(options)[torch.randint(len(options), (len(images),), generator=gen)]
        ids = ts.ids
    label = torch.tensor([options.index(q) for q in k.tolist()], dtype=torch.long)
    return TensorSet({"image": turn(images, k)}, label, ids)


def judge_epochs(data: Any) -> int:
    """The judge's epochs: JUDGE_STEPS steps or more (3 to 30 epochs)."""
    steps = max(1, len(data.train) // JUDGE_TRAIN["batch_size"])
    return min(30, max(3, math.ceil(JUDGE_STEPS / steps)))


def judge_quality(judge: nn.Module, data: Any) -> dict[str, Any]:
    """The judge's accuracy on the real test (or val) images (without classes: on telling their turns apart):
    how much its verdicts on samples can be trusted."""
    part = data.test if len(data.test) else data.val
    if not labelled(data):  # the held-out images turned (not the training split: it is not scored here)
        part = every_turn(part, turns(data.encoder.image_shape))
    _, probs = image_scores.judge_images(judge, part.inputs["image"])
    accuracy = float((probs.argmax(1) == part.target.long()).float().mean()) if len(part) else None
    model = "convnet " + json.dumps(JUDGE_MODEL["widths"])
    if not labelled(data):
        model += " trained to tell the images' turns apart (they have no classes)"
        return {"model": model, "epochs": judge_epochs(data), "accuracy": None, "turn_accuracy": accuracy,
                "n": len(part)}  # fmt: skip
    return {"model": model, "epochs": judge_epochs(data), "accuracy": accuracy, "n": len(part)}
