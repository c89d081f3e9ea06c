"""The judge of task generate_image: a classifier sw2 trains on the training split of the images a generator
learns (examples/mnist.yaml's convnet recipe without label smoothing), cached in the sw2 cache by the data's
fingerprint so that every model of the same data is judged by the same one; never updated after."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from torch import nn

from sw2.errors import UserError
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
    """The judge: examples/mnist.yaml's convnet trained on the training split (fp32, deterministic), cached
    in the sw2 cache by the data's fingerprint, so another model of the same data is judged by the same one."""
    from safetensors.torch import load_file, save_file

    from sw2.engine.loop import fit
    from sw2.model_options import ConvNetOptions

    if not data.encoder.classes or len(data.encoder.classes) < 2:
        raise UserError(
            "data: task generate_image judges samples by a classifier of the data's classes; give images "
            "in class folders (or IDX labels)"
        )
    epochs = judge_epochs(data)
    judge_train = TrainSpec(**JUDGE_TRAIN, epochs=epochs, seed=spec.train.seed, deterministic=True, precision="fp32",
                            device=spec.train.device, threads=spec.train.threads)  # fmt: skip
    judge = {"task": "classify", "model": ConvNetOptions(**JUDGE_MODEL), "train": judge_train, "augment": AugmentSpec()}
    judge_spec = spec.model_copy(update=judge)
    classify = TASKS.get("classify")
    key = hashlib.sha256(json.dumps([data.fingerprint, JUDGE_MODEL, JUDGE_TRAIN, epochs, spec.train.seed,
                                     list(data.encoder.image_shape)]).encode()).hexdigest()[:24]  # fmt: skip
    folder = cache_dir() / "judges"
    weights, about = folder / f"{key}.safetensors", folder / f"{key}.json"
    trainable = classify.trainable(judge_spec, data)
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
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
    tmp.replace(weights)
    about.write_text(json.dumps({"model": name, "kwargs": kwargs}), encoding="utf-8")
    return net.eval(), (name, kwargs)


def judge_epochs(data: Any) -> int:
    """The judge's epochs: JUDGE_STEPS steps or more (3 to 30 epochs)."""
    steps = max(1, len(data.train) // JUDGE_TRAIN["batch_size"])
    return min(30, max(3, math.ceil(JUDGE_STEPS / steps)))


def judge_quality(judge: nn.Module, data: Any) -> dict[str, Any]:
    """The judge's accuracy on the real test (or val) images: how much its verdicts on samples can be trusted."""
    part = data.test if len(data.test) else data.val
    _, probs = image_scores.judge_images(judge, part.inputs["image"])
    accuracy = float((probs.argmax(1) == part.target.long()).float().mean()) if len(part) else None
    return {"model": "convnet " + json.dumps(JUDGE_MODEL["widths"]), "epochs": judge_epochs(data),
            "accuracy": accuracy, "n": len(part)}  # fmt: skip
