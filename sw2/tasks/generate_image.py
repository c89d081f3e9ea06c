"""generate_image: a model that makes images like those of an image source (IDX MNIST, image folders, the
CIFAR-10 archive), a DCGAN or a small diffusion model, class-conditional with `model.conditional` where the
source has classes.

The data is read, split and encoded as task classify reads it (the classes are the labels). Training is the
task's own trainable: the generating network (`generator`), a GAN's `discriminator`, the `ema` of the
generator's weights that samples come from, and the `judge`: a classifier sw2 trains on the training split
first (the MNIST example's convnet recipe without label smoothing, cached by the data's fingerprint), never
updated after. Each epoch the judge scores a fixed set of samples from fixed noise against the real val images
(sw2.evaluation.image_scores): the Fréchet distance of its features is `val_loss` (its negative `val_metric`,
what early stopping, `best_epoch` and the tuner read), with the share of confident samples and the entropy of
their classes beside it; a grid of the same samples is kept for every epoch. A bundle samples from Python
(`bundle.sample(n, classes=..., seed=...)`), `sw2 sample` and a server's `POST /v1/sample`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from sw2.data.dataset import Prepared, prepare
from sw2.engine.batches import Shuffled
from sw2.engine.trainable import Trainable
from sw2.errors import UserError
from sw2.evaluation import image_scores
from sw2.plugins import MODELS
from sw2.spec import AutoModel
from sw2.task_rules import GENERATE_IMAGE, check_generate_image
from sw2.tasks import TASKS
from sw2.tasks import generate_image_report as r
from sw2.tasks.base import Scored, Task, TinyExample
from sw2.tasks.classify import Classify
from sw2.tasks.image_judge import judge_quality, labelled, train_judge
from sw2.tasks.image_steps import DiffusionStep, GANStep, to_pixels
from sw2.tasks.target import TargetCodec

if TYPE_CHECKING:
    from sw2.bundle import Bundle
    from sw2.engine.result import FitResult
    from sw2.spec import Spec

SCORED = 500  # samples the judge scores each epoch (from the same noise every time)
GRID = 64  # of them in each epoch's grid
EVAL_STEPS = 20  # a diffusion model's samples each epoch take at most this many DDIM steps (the final ones all)
MAX_SAMPLES = 1024  # the most images one call of `sample` makes
MAX_SIDE = 1024  # pixels: a bundle's images are at most this tall and wide
CHUNK_PIXELS = 250 * 32 * 32  # pixels generated at a time (250 CIFAR-10 images)
ONE_CLASS = 0.5  # an epoch whose samples the judge gives one class this often: a collapse (3 or more classes)
MODULES = {"dcgan": ("dcgan", "dcgan_discriminator"), "diffusion": ("diffusion", None)}


class ClassesOptional(Classify):
    """Task classify's reading of images where one class is enough: images without class folders are one
    class, UNLABELLED (sw2.data.images); the classes only condition and judge."""

    def target_codec(self, values: np.ndarray, target: str) -> TargetCodec:
        codec = TargetCodec(self)
        self.fit_target(codec, values, target)
        return codec


READER = ClassesOptional("classify", "accuracy")


def options_of(spec: Spec) -> Any:
    """The spec's model options (`auto`: a DCGAN, the faster of the two on a CPU)."""
    return spec.model.resolved("dcgan") if isinstance(spec.model, AutoModel) else spec.model


class GenerateImage(Task):
    """Images from noise; the classes (where the source has them) only condition and judge. The images are
    read, split and encoded by task classify (its `prepare`, `load_encoder`, `held_out`)."""

    metrics = GENERATE_IMAGE.metrics
    blend = None
    predicts: ClassVar[bool] = False
    exports: ClassVar[bool] = False
    compresses: ClassVar[bool] = False
    samples: ClassVar[bool] = True  # sw2 sample, Bundle.sample, /v1/sample

    discrete = True  # splits are stratified by class

    def check_spec(self, spec: Spec) -> None:
        super().check_spec(spec)
        check_generate_image(spec)

    def tiny_example(self, folder: Path) -> TinyExample:
        """96 tiny 8 x 8 images of two shapes (a bright square, a bright bar) in two class folders; a small
        DCGAN for 2 epochs."""
        from PIL import Image

        rng = np.random.default_rng(0)
        for label in ("square", "bar"):
            (folder / "shapes" / label).mkdir(parents=True, exist_ok=True)
            for i in range(48):
                img = rng.integers(0, 40, (8, 8), dtype=np.uint8)
                if label == "square":
                    img[2:6, 2:6] = 220
                else:
                    img[:, 3:5] = 220
                Image.fromarray(img, "L").save(folder / "shapes" / label / f"{i}.png")
        train = {"epochs": 30, "batch_size": 8, "deterministic": True, "threads": 1, "precision": "fp32",
                 "device": "cpu"}  # fmt: skip
        data = {"path": "shapes", "split": {"val": 0.25, "test": 0.25}}
        model = {"name": "dcgan", "widths": [8, 16], "latent": 8, "ema": 0, "generator_lr": 2e-3,
                 "discriminator_lr": 2e-3}  # fmt: skip
        spec = {"name": "tiny-generate_image", "task": self.name, "data": data, "model": model, "train": train}
        return TinyExample(spec, ("/v1/sample", {"n": 2, "seed": 0}))

    # ---- data ------------------------------------------------------------------------------------
    def prepare(self, spec: Spec, root: Path) -> Prepared:
        from sw2.data.sources import detect

        refusal = f"data: task {self.name} learns images; give an image folder, IDX files or an image archive"
        if detect(spec.data, root) in ("csv", "parquet", "package"):
            raise UserError(refusal)
        data = prepare(spec, root, READER)
        if data.encoder.image_shape is None:
            raise UserError(refusal)
        if options_of(spec).conditional and len(data.encoder.classes or []) < 2:
            raise UserError("model.conditional: the data has fewer than 2 classes; set conditional: false")
        return data

    def load_encoder(self, state: dict[str, Any]) -> Any:
        """preprocess.json, its image size bounded: a crafted one must not make `sample` draw huge noise."""
        encoder = READER.load_encoder(state)
        c, h, w = encoder.image_shape or (0, 0, 0)
        if not (1 <= c <= 4 and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise UserError(
                f"preprocess.json: image_shape {encoder.image_shape} is not an image size sw2 writes (1-4 channels, "
                f"sides up to {MAX_SIDE}); the bundle is damaged: train it again"
            )
        return encoder

    def held_out(self, bundle: Bundle, spec: Spec, root: Path) -> Any:
        return READER.held_out(bundle, spec, root)

    def describe(self, data: Prepared) -> str:
        c, h, w = data.encoder.image_shape
        return f"{h} x {w} images, {c} channel(s); train {len(data.train)}, val {len(data.val)}, test {len(data.test)}"

    def data_verdicts(self, data: Prepared) -> list[Any]:
        return []

    # ---- training --------------------------------------------------------------------------------
    def candidates(self, spec: Spec, data: Any) -> list[Any]:
        return [options_of(spec)]

    def trainable(self, spec: Spec, data: Any, **options: Any) -> Trainable:
        if options:
            raise UserError(f"task {self.name} trains its own networks: {', '.join(sorted(options))} do not apply")
        o = options_of(spec)
        gen_name, disc_name = MODULES[o.name]
        judge, judge_record = train_judge(spec, data)
        built = {"generator": (gen_name, MODELS.get(gen_name).configure(o, data.encoder, len(data.train)))}
        if disc_name:
            built["discriminator"] = (disc_name, MODELS.get(disc_name).configure(o, data.encoder, len(data.train)))
        if o.ema:
            built["ema"] = built["generator"]
        with torch.random.fork_rng(devices=[]):  # the same initial weights in every process
            torch.manual_seed(spec.train.seed)
            modules: dict[str, nn.Module] = {k: MODELS.get(name)(**kwargs) for k, (name, kwargs) in built.items()}
        if "ema" in modules:
            modules["ema"].load_state_dict(modules["generator"].state_dict())
            modules["ema"].requires_grad_(False)
        modules["judge"] = judge
        built["judge"] = judge_record
        step = GANStep(modules, o, spec.train) if disc_name else DiffusionStep(modules, o, spec.train)
        reference = image_scores.statistics(image_scores.judge_images(judge, real_images(data))[0])
        noise = fixed_noise(modules["generator"], o, data, spec.train.seed)
        # each evaluation's grid, by (generator, steps taken), for the bundle (score_run): a pre-flight probe's are
        # another generator's, and the evaluation after training repeats the last epoch's
        grids: dict[tuple[int, int], np.ndarray] = data.__dict__.setdefault("grids", {})

        quick = o.model_copy(update={"sample_steps": min(o.sample_steps, EVAL_STEPS)}) if o.name == "diffusion" else o

        def evaluate(device: torch.device | None = None) -> dict[str, float]:
            pixels = make(modules, quick, noise, device)
            s = image_scores.scores(judge, pixels, reference, labelled(data))
            grids[id(modules["generator"]), step.calls] = pixels[:GRID].numpy()
            row = {"val_loss": s["frechet_distance"], "val_metric": -s["frechet_distance"]}
            if "confident" in s:  # a judge of classes (not of unlabelled images)
                row |= {"confident": s["confident"], "class_entropy": s["class_entropy"],
                        "top_class_share": max(s["class_shares"])}  # fmt: skip
            if isinstance(step, GANStep):
                row |= step.epoch_losses()
            return row

        return Trainable(
            modules=modules,
            step=step,
            batches=Shuffled(data.train, spec.augment, spec.train.seed, spec.train.batch_size),
            evaluate=evaluate,
            metric="neg_frechet_distance",
            built=built,
        )

    # ---- scores ----------------------------------------------------------------------------------
    def score_run(self, model: nn.Module, data: Prepared, spec: Spec, result: FitResult) -> Scored:
        """The last epoch's scores of the samples, the real test images' own scores beside them, and the
        files: samples.png, interpolation.png and each epoch's grid."""
        modules = dict(model.items())
        o = options_of(spec)
        judge = modules["judge"]
        reference = image_scores.statistics(image_scores.judge_images(judge, real_images(data))[0])
        noise = fixed_noise(modules["generator"], o, data, spec.train.seed)
        pixels = make(modules, o, noise, None)
        scored = image_scores.scores(judge, pixels, reference, labelled(data))
        test = data.test if len(data.test) else data.train  # not val: the reference is drawn from it
        real = image_scores.scores(judge, spread(test.inputs["image"], SCORED), reference, labelled(data))
        mean = data.train.inputs["image"].float().mean(0).round().to(torch.uint8)
        dumb = image_scores.scores(judge, mean.expand(SCORED, *mean.shape).clone(), reference, labelled(data))
        keys = ("frechet_distance", "confident", "class_entropy")
        scored["baseline"] = {"name": "the mean training image", **{k: dumb[k] for k in keys if k in dumb}}
        scored["real"] = {"name": f"{min(SCORED, len(test))} real {'test' if len(data.test) else 'training'} images",
                          **{k: real[k] for k in keys if k in real}}  # fmt: skip
        for part in (scored, scored["baseline"], scored["real"]):
            part["neg_frechet_distance"] = -part["frechet_distance"]
        scored.pop("class_shares", None)
        if len(data.encoder.classes) >= 3 and not o.conditional:  # one class taking most samples after epoch 1
            scored["collapsed_epochs"] = [row["epoch"] for row in result.history[1:]
                                          if row.get("top_class_share", 0) > ONE_CLASS]  # fmt: skip
        data.pictures = {
            "samples.png": r.grid_png(pixels[:GRID].numpy()),
            "interpolation.png": r.grid_png(interpolation(modules, o, data, spec.train.seed), cols=10),
        }
        ours = [grid for (owner, _), grid in getattr(data, "grids", {}).items() if owner == id(modules["generator"])]
        for epoch, grid in enumerate(ours, 1):
            data.pictures[f"samples_epoch_{epoch:03d}.png"] = r.grid_png(grid)
        data.epoch_grids = ours
        return Scored(metrics={"test": scored, "judge": judge_quality(judge, data)})

    def write_files(self, folder: Path, data: Any, metrics: dict[str, Any]) -> None:
        for name, png in getattr(data, "pictures", {}).items():
            (folder / name).write_bytes(png)
        grids = getattr(data, "epoch_grids", [])
        if grids and (folder / "tensorboard").is_dir():  # each epoch's grid beside the run's curves
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(str(folder / "tensorboard")) as writer:
                for epoch, grid in enumerate(grids, 1):
                    mosaic = np.asarray(Image.open(io.BytesIO(r.grid_png(grid))))
                    writer.add_image("samples", mosaic if mosaic.ndim == 3 else mosaic[..., None], epoch,
                                     dataformats="HWC")  # fmt: skip

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base, real = scores["baseline"], scores.get("real", {})
        msg = f"Fréchet distance {scores['frechet_distance']:.2f} vs {base['frechet_distance']:.2f} ({base['name']})"
        if real:
            msg += f"; real images {real['frechet_distance']:.2f}"
        return scores["frechet_distance"] < base["frechet_distance"], msg

    def search_space(self, spec: Spec, data: Any) -> dict[str, Any]:
        """A decade either side of the spec's lrs (a GAN's two, TTUR), the batch size, the EMA's decay, and a
        GAN's label smoothing and noise size (the model's own options where the spec names the model)."""
        from sw2.spec import Choice, FloatRange, LogRange

        o, t = options_of(spec), spec.train
        sizes = sorted({b for b in (32, 64, 128, 256) if b <= len(data.train) // 4} | {t.batch_size})
        space: dict[str, Any] = {"train.batch_size": Choice(choice=sizes)} if len(sizes) > 1 else {}
        if isinstance(spec.model, AutoModel):
            raise UserError("sw2 tune: name the model to search its options (model: dcgan or model: diffusion)")
        space["model.ema"] = Choice(choice=sorted({0.0, 0.99, 0.999, o.ema}))
        if o.name == "dcgan":
            for net in ("generator", "discriminator"):
                lr = getattr(o, f"{net}_lr")
                space[f"model.{net}_lr"] = LogRange(log=(lr / 10, lr * 10))
            space["model.label_smoothing"] = FloatRange(range=(0.0, 0.2))
            space["model.latent"] = Choice(choice=sorted({32, 64, 128, o.latent}))
        else:
            lr = t.lr if isinstance(t.lr, float) else 1e-3
            space["train.lr"] = LogRange(log=(lr / 10, lr * 10))
        return space

    def preflight(self, spec: Spec, data: Any) -> list[Any]:
        from sw2.preflight import Check
        from sw2.tasks.generate_image_checks import short_run

        return [Check("generator", frozenset(), lambda: short_run(self, spec, data))]

    def report_sections(self) -> list[tuple[str, str, Any]]:
        return [("samples", "Samples", r.samples), ("scores", "Scores over epochs", r.score_curves)]

    def report_scores(self, run: Any) -> dict[str, Any]:
        return run.m.get("test", {})

    def what_the_net_sees(self, spec: Spec, data: Any, folder: Path) -> None:
        (folder / "what_the_net_sees.png").write_bytes(r.grid_png(data.train.inputs["image"][:GRID].numpy()))

    # ---- using a bundle --------------------------------------------------------------------------
    def predict(self, bundle: Bundle, data: Any, *_: Any) -> Any:
        """An image generator takes no examples: refused, naming what it does."""
        raise UserError(f"{bundle.path} is an image generator: it takes no examples; sw2 sample BUNDLE draws images")

    predict_proba = prediction_rows = predict  # type: ignore[assignment]

    def evaluate_file(self, bundle: Bundle, path: Path) -> dict[str, Any]:
        raise UserError(f"{path}: an image generator is not scored on a data file; its scores are in metrics.json "
                        "(sw2 report BUNDLE), and sw2 sample draws images")  # fmt: skip

    def sample(
        self, bundle: Bundle, n: int, classes: Any = None, seed: int = 0, until: Callable[[], None] | None = None
    ) -> torch.Tensor:
        """`n` new images (uint8, n x C x H x W) from the EMA weights; `classes` (a class name or index, or one
        per image) for a class-conditional model; the same seed, the same images. `until` is called between
        chunks of images and a diffusion model's steps (it raises to stop the work)."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SAMPLES:
            raise UserError(f"n: {n!r}; give a whole number of images from 1 to {MAX_SAMPLES}")
        modules = dict(bundle.model.items())
        o = options_of(bundle.spec)
        y = class_indices(bundle.encoder.classes or [], classes, n, o.conditional)
        gen = torch.Generator().manual_seed(int(seed))
        net = modules["generator"]
        shape = list(bundle.encoder.image_shape)
        noise = (
            torch.randn(n, net.latent, generator=gen) if o.name == "dcgan" else torch.randn(n, *shape, generator=gen)
        )
        return make(modules, o, (noise, y), None, until)


def class_indices(classes: list[str], asked: Any, n: int, conditional: bool) -> torch.Tensor | None:
    """The class index of each of `n` samples: `asked` a class name or index, a list of them (one per sample),
    or None (a conditional model: every class in turn)."""
    if asked is None:
        return torch.arange(n) % len(classes) if conditional else None
    if not conditional:
        raise UserError("class: this model is not class-conditional (model.conditional: false); leave class out")
    wanted = asked if isinstance(asked, list) else [asked] * n
    if len(wanted) != n:
        raise UserError(f"class: {len(wanted)} classes for {n} images; give one class, or one per image")
    out = []
    for c in wanted:
        if isinstance(c, str) and c in classes:
            out.append(classes.index(c))
        elif isinstance(c, int | str) and str(c).lstrip("-").isdigit() and 0 <= int(c) < len(classes) and \
                str(c) not in classes:  # fmt: skip
            out.append(int(c))
        elif isinstance(c, int) and str(c) in classes:
            out.append(classes.index(str(c)))
        else:
            names = ", ".join(map(str, classes))
            raise UserError(f"class: {str(c)[:40]!r} is not a class of this model; its classes: {names}")
    return torch.tensor(out)


def spread(images: torch.Tensor, n: int) -> torch.Tensor:
    """`n` of `images` drawn at random (seeded): a source's own test split may be in class order (CIFAR-10's
    archive is), where its first images would all be of one class."""
    if len(images) <= n:
        return images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]]


def real_images(data: Any) -> torch.Tensor:
    """The real images the samples are compared with: the val split's (or up to SCORED x 4 training images)."""
    part = data.val if len(data.val) >= 50 else data.train
    return spread(part.inputs["image"], SCORED * 4)


def fixed_noise(generator: nn.Module, o: Any, data: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The noise (and classes) every epoch's samples are made from: the same every epoch and every process."""
    gen = torch.Generator().manual_seed(seed + 1)
    shape = list(data.encoder.image_shape)
    noise = (
        torch.randn(SCORED, generator.latent, generator=gen)
        if o.name == "dcgan"
        else torch.randn(SCORED, *shape, generator=gen)
    )
    y = torch.arange(SCORED) % len(data.encoder.classes) if o.conditional else None
    return noise, y


@torch.no_grad()
def make(modules: dict[str, nn.Module], o: Any, noise: tuple[torch.Tensor, torch.Tensor | None],
         device: torch.device | None, until: Callable[[], None] | None = None) -> torch.Tensor:  # fmt: skip
    """uint8 images from `noise` (and classes) by the EMA weights (the generator's without them), on the CPU;
    `until` is called before each chunk of images and after each diffusion step (it raises to stop)."""
    net = modules.get("ema") or modules["generator"]
    device = device or next(net.parameters()).device
    was = net.training
    net.eval()
    z, y = noise
    out = []
    try:
        side = z.shape[-1] * z.shape[-2] if z.dim() == 4 else 32 * 32  # diffusion noise is image-sized
        chunk = max(1, CHUNK_PIXELS // side)  # the memory of one forward pass is bounded
        for i in range(0, len(z), chunk):
            if until is not None:
                until()
            zc = z[i : i + chunk].to(device)
            yc = None if y is None else y[i : i + chunk].to(device)
            x = net(zc, yc) if o.name == "dcgan" else net.sample(zc, yc, o.sample_steps, o.guidance, until)
            out.append(to_pixels(x).cpu())
    finally:
        net.train(was)
    return torch.cat(out)


def interpolation(modules: dict[str, nn.Module], o: Any, data: Any, seed: int, rows: int = 4) -> np.ndarray:
    """`rows` strips of 10 images between two noise draws (spherical interpolation), for interpolation.png."""
    gen = torch.Generator().manual_seed(seed + 2)
    shape = [modules["generator"].latent] if o.name == "dcgan" else list(data.encoder.image_shape)
    a, b = torch.randn(rows, *shape, generator=gen), torch.randn(rows, *shape, generator=gen)
    steps = torch.linspace(0, 1, 10)
    omega = torch.acos((a.flatten(1) * b.flatten(1)).sum(1) / (a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1)))
    z = torch.stack([(torch.sin((1 - s) * omega) / torch.sin(omega)).view(-1, *[1] * len(shape)) * a
                     + (torch.sin(s * omega) / torch.sin(omega)).view(-1, *[1] * len(shape)) * b
                     for s in steps], 1).flatten(0, 1)  # fmt: skip
    y = (torch.arange(rows) % len(data.encoder.classes)).repeat_interleave(10) if o.conditional else None
    return make(modules, o, (z, y), None).numpy()


TASKS.register("generate_image")(GenerateImage("generate_image", "neg_frechet_distance"))
