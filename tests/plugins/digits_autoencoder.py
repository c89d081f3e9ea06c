"""A task plug-in that learns no target, written as a user would: `task: reconstruct`, an autoencoder of small
images given as a table of pixel columns (sklearn's 8x8 digits: 64 columns of 0..16).

Two networks, each a registered model (`digits_encoder`: pixels -> code, `digits_decoder`: code -> pixels), two
optimizers (the spec's `train.optimizer`, each with its own lr: `model.encoder_lr` / `model.decoder_lr`, default
`train.lr`, both following `train.schedule`), one joint step on the reconstruction error. A checkpoint is
judged by the reconstruction error on the val split (`val_metric` = -MSE, pixels scaled to 0..1), the report
by the test split's beside the mean training image's. A trained bundle reconstructs images and samples new
ones (codes drawn from a Gaussian fitted to the training images' codes, saved in preprocess.json):

    bundle = sw2.load("runs/digits")
    bundle.task.reconstruct(bundle, images)   # (n, 64) or (n, 8, 8) pixels -> the same shape, reconstructed
    bundle.task.sample(bundle, 16, seed=0)    # (16, 8, 8) new images

The spec's `model:` is `auto` (or names either half) with the options of `CodecOptions`. Registered by importing
this module (or naming it in $SW2_PLUGINS for the CLI); nothing in sw2 changes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from sw2.data.dataset import TensorSet
from sw2.data.sources import read_table, resolve
from sw2.engine.batches import Shuffled
from sw2.engine.context import Context
from sw2.engine.optim import lr_factor, make_optimizer
from sw2.engine.step import TrainStep
from sw2.engine.trainable import Trainable
from sw2.errors import UserError
from sw2.models.base import Model
from sw2.plugins import MODELS
from sw2.preflight import Check, Verdict
from sw2.spec import AutoModel, ModelOptions, Spec
from sw2.tasks import TASKS, Task
from sw2.tasks.base import HeldOut, Prepared, Scored, TinyExample

HALVES = ("digits_encoder", "digits_decoder")


class CodecOptions(ModelOptions):
    """digits_encoder / digits_decoder: the two halves of task reconstruct's autoencoder (a plug-in's)."""

    latent: int = Field(8, ge=1, description="size of the code an image is squeezed through")
    hidden: int = Field(32, ge=1, description="units of each half's hidden layer")
    encoder_lr: float | None = Field(None, gt=0, description="the encoder's optimizer's lr (default train.lr)")
    decoder_lr: float | None = Field(None, gt=0, description="the decoder's optimizer's lr (default train.lr)")


@MODELS.register("digits_encoder")
class DigitsEncoder(Model):
    options = CodecOptions

    def __init__(self, pixels: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(pixels, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@MODELS.register("digits_decoder")
class DigitsDecoder(Model):
    options = CodecOptions

    def __init__(self, latent: int, hidden: int, pixels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, pixels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z))


@dataclass
class Pixels:
    """The bundle's preprocess.json: the pixel columns, the scale that maps them to 0..1, the mean training
    image (the dumb baseline), and (after training) the mean and spread of the training images' codes, which
    `sample` draws from."""

    columns: list[str]
    scale: float
    mean_image: list[float]
    latent_mean: list[float] = field(default_factory=list)
    latent_std: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "scale": self.scale, "mean_image": self.mean_image,
                "latent_mean": self.latent_mean, "latent_std": self.latent_std}  # fmt: skip

    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images (n x pixels, or n x h x w) in the data's units as the networks' input."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).reshape(len(images), -1)
        if x.shape[1] != len(self.columns):
            raise UserError(f"images of {x.shape[1]} pixels; this bundle's have {len(self.columns)}")
        return x / self.scale


@dataclass
class Images(Prepared):
    """The prepared data: the splits (inputs "pixels" scaled to 0..1; no target: an empty column per row)."""

    train: TensorSet


def _pixels(path: Path, target: str) -> tuple[pd.DataFrame, torch.Tensor]:
    """A table of pixel columns (a `target` column, a label if there is one, left out) and its values."""
    frame = read_table(path).drop(columns=[target], errors="ignore")
    x = torch.tensor(frame.apply(pd.to_numeric, errors="coerce").to_numpy(np.float32))
    if not len(x) or not torch.isfinite(x).all():
        raise UserError(f"{path}: give rows of pixels, every cell a number")
    return frame, x


def _split(x: torch.Tensor, idx: np.ndarray) -> TensorSet:
    return TensorSet({"pixels": x[torch.from_numpy(idx)]}, torch.zeros(len(idx), 0), idx.astype(str))


def codec_options(spec: Spec) -> CodecOptions:
    """The spec's `model:` as the autoencoder's options (`auto`: the defaults, with the options it gives)."""
    model = spec.model
    return model.resolved(HALVES[0]) if isinstance(model, AutoModel) else model  # type: ignore[return-value]


def mse(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, device: torch.device | None = None) -> float:
    """Mean squared reconstruction error of `x` (pixels scaled to 0..1), in eval mode, without gradients."""
    modes = encoder.training, decoder.training
    encoder.eval()
    decoder.eval()
    device = device or next(encoder.parameters()).device
    with torch.no_grad():
        x = x.to(device)
        error = F.mse_loss(decoder(encoder(x)), x).item()
    encoder.train(modes[0])
    decoder.train(modes[1])
    return error


class CodecStep(TrainStep):
    """One joint step: both halves learn from the reconstruction error, each with its own optimizer and lr."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, spec: Spec) -> None:
        self.encoder, self.decoder, self.train_spec = encoder, decoder, spec.train
        options = codec_options(spec)
        self.lrs = {"encoder": options.encoder_lr or spec.train.lr, "decoder": options.decoder_lr or spec.train.lr}
        if "auto" in self.lrs.values():
            raise UserError(
                "train.lr: auto sweeps a supervised loss, which task reconstruct lacks; give a number "
                "(or model.encoder_lr and model.decoder_lr)"
            )
        self.optimizers = {
            name: make_optimizer(module, spec.train.model_copy(update={"lr": self.lrs[name]}))
            for name, module in (("encoder", encoder), ("decoder", decoder))
        }

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])

    def __call__(
        self, batch: dict[str, torch.Tensor], target: torch.Tensor, idx: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        factor = lr_factor(self.train_spec, ctx.progress)
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = float(self.lrs[name]) * factor * group["lr_scale"]
        x = batch["pixels"]
        loss = F.mse_loss(self.decoder(self.encoder(x)), x)
        (loss / ctx.accumulate).backward()
        if ctx.updates:
            if self.train_spec.grad_clip:
                for module in (self.encoder, self.decoder):
                    nn.utils.clip_grad_norm_(module.parameters(), self.train_spec.grad_clip)
            for opt in self.optimizers.values():
                opt.step()
                opt.zero_grad(set_to_none=True)
        return loss.detach()


class Reconstruct(Task):
    metrics = ("neg_mse", "mse")
    # its bundles are used from Python (`reconstruct`, `sample`): no sw2 predict / serve / export / compress
    predicts: ClassVar[bool] = False
    exports: ClassVar[bool] = False
    compresses: ClassVar[bool] = False

    def check_spec(self, spec: Spec) -> None:
        super().check_spec(spec)
        if spec.model.name not in ("auto", *HALVES):
            raise ValueError(f"model: task {self.name} trains digits_encoder + digits_decoder, not {spec.model.name}")

    def tiny_example(self, folder: Path) -> TinyExample:
        """scikit-learn's 8x8 digits (1,797 images of 0..16) as 64 pixel columns, a code of 8, 6 epochs."""
        from sklearn.datasets import load_digits

        pixels = load_digits().data.astype(np.int64)
        pd.DataFrame(pixels, columns=[f"p{i}" for i in range(pixels.shape[1])]).to_csv(
            folder / "digits.csv", index=False
        )
        train = {"epochs": 6, "batch_size": 64, "lr": 0.01, "schedule": "constant", "warmup": 0.0,
                 "deterministic": True, "threads": 1, "precision": "fp32", "device": "cpu"}  # fmt: skip
        data = {"path": "digits.csv", "split": {"val": 0.15, "test": 0.15}}
        spec = {"name": "tiny-reconstruct", "task": self.name, "data": data,
                "model": {"latent": 8, "hidden": 32, "decoder_lr": 0.005}, "train": train}  # fmt: skip
        return TinyExample(spec)

    # ---- data ----------------------------------------------------------------------------------
    def prepare(self, spec: Spec, root: Path) -> Images:
        if not spec.data.path:
            raise UserError(f"data.path: task {self.name} reads a CSV or Parquet file of pixel columns")
        frame, x = _pixels(resolve(root, spec.data.path), spec.target)
        split = spec.data.split
        order = np.random.default_rng(split.seed).permutation(len(x))
        n_test, n_val = round(len(x) * split.test), round(len(x) * split.val)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        if spec.data.limit is not None:
            train = train[: spec.data.limit]
        scale = float(x[torch.from_numpy(train)].max().clamp_min(1e-6))
        x = x / scale
        encoder = Pixels([str(c) for c in frame.columns], scale, x[torch.from_numpy(train)].mean(0).tolist())
        digest = hashlib.sha256(x[torch.from_numpy(np.sort(train))].numpy().tobytes()).hexdigest()
        report = {"source": f"{spec.data.path} ({x.shape[1]} pixel columns)", "train": len(train), "val": len(val),
                  "test": len(test)}  # fmt: skip
        return Images(encoder, _split(x, val), _split(x, test), report, digest, train=_split(x, train))

    def load_encoder(self, state: dict[str, Any]) -> Pixels:
        return Pixels(**state)

    def describe(self, data: Any) -> str:
        return (
            f"{len(data.encoder.columns)} pixels; train {len(data.train)}, val {len(data.val)}, test {len(data.test)}"
        )

    def held_out(self, bundle: Any, spec: Spec, root: Path) -> HeldOut:
        data = self.prepare(spec, root)
        return HeldOut(data.test, data.val, data.test, data.fingerprint)

    def examples_from(self, bundle: Any, path: Path) -> TensorSet:
        """The images of another file as the networks take them (`sw2 report BUNDLE --data FILE`)."""
        x = bundle.encoder.encode(_pixels(path, bundle.spec.target)[1])
        return TensorSet({"pixels": x}, torch.zeros(len(x), 0), np.arange(len(x)).astype(str))

    def evaluate_file(self, bundle: Any, path: Path) -> dict[str, Any]:
        """The reconstruction error of every image of another file (`sw2 eval BUNDLE --data FILE`)."""
        return self.scores(bundle.model, self.examples_from(bundle, path).inputs["pixels"], bundle.encoder)

    # ---- training ------------------------------------------------------------------------------
    def candidates(self, spec: Spec, data: Any) -> list[Any]:
        return [codec_options(spec)]

    def trainable(self, spec: Spec, data: Any, **options: Any) -> Trainable:
        if options:
            raise UserError(f"task {self.name} trains its own autoencoder: {', '.join(sorted(options))} do not apply")
        o, pixels = codec_options(spec), data.train.inputs["pixels"].shape[1]
        built = {
            "encoder": (HALVES[0], {"pixels": pixels, "hidden": o.hidden, "latent": o.latent}),
            "decoder": (HALVES[1], {"latent": o.latent, "hidden": o.hidden, "pixels": pixels}),
        }
        with torch.random.fork_rng(devices=[]):  # the same initial weights in every process
            torch.manual_seed(spec.train.seed)
            modules = {key: MODELS.get(name)(**kwargs) for key, (name, kwargs) in built.items()}
        encoder, decoder, val = modules["encoder"], modules["decoder"], data.val.inputs["pixels"]

        def evaluate(device: torch.device | None = None) -> dict[str, float]:
            error = mse(encoder, decoder, val, device)
            return {"val_loss": error, "val_metric": -error}

        return Trainable(
            modules=modules,
            step=CodecStep(encoder, decoder, spec),
            batches=Shuffled(data.train, spec.augment, spec.train.seed, spec.train.batch_size),
            evaluate=evaluate,
            metric="neg_mse",
            built=built,
        )

    def preflight(self, spec: Spec, data: Any) -> list[Any]:
        def bottleneck() -> list[Verdict]:
            o, pixels = codec_options(spec), data.train.inputs["pixels"].shape[1]
            if o.latent >= pixels:
                msg = f"a code of {o.latent} for {pixels} pixels can copy them; lower model.latent"
                return [Verdict("bottleneck", "WARN", msg)]
            return [Verdict("bottleneck", "PASS", f"{pixels} pixels through a code of {o.latent}")]

        return [Check("bottleneck", frozenset(), bottleneck)]

    # ---- scores --------------------------------------------------------------------------------
    def scores(self, model: nn.Module, x: torch.Tensor, encoder: Pixels) -> dict[str, Any]:
        """The reconstruction error of `x` beside the mean training image's (the dumb baseline)."""
        error = mse(model["encoder"], model["decoder"], x, torch.device("cpu"))
        base = F.mse_loss(torch.tensor(encoder.mean_image).expand_as(x), x).item()
        return {"n": len(x), "mse": error, "neg_mse": -error,
                "baseline": {"name": "mean training image", "mse": base, "neg_mse": -base}}  # fmt: skip

    def score_run(self, model: nn.Module, data: Any, spec: Spec, result: Any) -> Scored:
        metrics = {split: self.scores(model, getattr(data, split).inputs["pixels"], data.encoder)
                   for split in ("val", "test") if len(getattr(data, split))}  # fmt: skip
        with torch.no_grad():  # the prior `sample` draws codes from, saved with the encoder in preprocess.json
            model.eval()
            codes = model["encoder"](data.train.inputs["pixels"])
        data.encoder.latent_mean = codes.mean(0).tolist()
        data.encoder.latent_std = codes.std(0).tolist()
        return Scored(metrics=metrics)

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        return scores["mse"] < base[
            "mse"
        ], f"reconstruction MSE {scores['mse']:.4f} vs the mean image's {base['mse']:.4f}"

    def report_scores(self, run: Any) -> dict[str, Any]:
        return self.scores(run.b.model, run.test.inputs["pixels"], run.b.encoder)

    # ---- using a bundle ------------------------------------------------------------------------
    def reconstruct(self, bundle: Any, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """`images` (n x pixels, or n x h x w, in the data's units) through the code and back, in their shape."""
        x = bundle.encoder.encode(images)
        with torch.no_grad():
            out = bundle.model["decoder"](bundle.model["encoder"](x)) * bundle.encoder.scale
        return out.numpy().reshape(np.shape(images))

    def sample(self, bundle: Any, n: int, seed: int = 0) -> np.ndarray:
        """`n` new images (n x side x side where the pixels make a square, else n x pixels) decoded from codes
        drawn from the Gaussian of the training images' codes; the same `seed`, the same images."""
        enc: Pixels = bundle.encoder
        if not enc.latent_mean:
            raise UserError(f"{bundle.path}: preprocess.json has no code statistics; train the bundle again")
        gen = torch.Generator().manual_seed(seed)
        z = torch.tensor(enc.latent_mean) + torch.randn(n, len(enc.latent_mean), generator=gen) * torch.tensor(
            enc.latent_std
        )
        with torch.no_grad():
            out = (bundle.model["decoder"](z) * enc.scale).clamp(0, enc.scale).numpy()
        side = math.isqrt(out.shape[1])
        return out.reshape(n, side, side) if side * side == out.shape[1] else out


TASKS.register("reconstruct")(Reconstruct("reconstruct", "neg_mse"))
