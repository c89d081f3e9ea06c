"""What a task plug-in provides. Every method the pipeline, the engine, the bundle, the report, the model
tests and the pre-flight may call on a task is named here, with a default or a NotImplementedError.

Three groups: the target (how a supervised task encodes its labels; a language model has none), training
(loss, score, output bias: the engine's only view of a task) and the run (data, scores, predictions,
report, checks), which the task implements by calling the layers below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from sw2.errors import UserError
from sw2.task_rules import check_task

if TYPE_CHECKING:
    from sw2.bundle import Bundle
    from sw2.engine.result import FitResult
    from sw2.engine.trainable import Trainable
    from sw2.preflight.verdict import Verdict
    from sw2.spec import Spec


@dataclass
class Scored:
    """A trained model's scores on the run's held-out splits (metrics.json's "val" and "test"), with the
    raw outputs kept for the report, anything else the task adds to metrics.json, and text files for the
    bundle."""

    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # text files for the bundle, by name
    training: dict[str, Any] = field(default_factory=dict)  # added to metrics.json's "training"


@dataclass
class HeldOut:
    """A spec's held-out data for a trained bundle, encoded as the bundle encodes: the test split, the val
    split, the one model tests run on, and the training data's fingerprint (has the data changed since?)."""

    test: Any
    val: Any
    tested: Any
    fingerprint: str
    train: Any = None  # the training examples, where the task has some to give (export checks its graph on them too)


@dataclass
class Prepared:
    """What the pipeline reads of a task's prepared data (`Task.prepare`), for a task of its own to subclass:
    the encoder saved as preprocess.json (`to_json`), the held-out splits, the data's summary (`report`, with
    its "source") and fingerprint. The report and the model tests score `raw_test` (and `scored_val`)."""

    encoder: Any
    val: Any
    test: Any
    report: dict[str, Any]
    fingerprint: str

    @property
    def raw_test(self) -> Any:
        return self.test

    @property
    def scored_val(self) -> Any:
        return self.val


@dataclass
class TinyExample:
    """A small, fast run of a task on data it wrote into a folder: what the task conformance suite
    (tests/test_conformance.py) trains, reloads, resumes after SIGKILL, exports, serves and attacks."""

    spec: dict[str, Any]  # a spec whose paths are relative to the folder
    request: tuple[str, dict[str, Any]] | None = None  # (path, JSON body) a server of the bundle answers 200
    predict: str | None = None  # a data file in the folder that `sw2 predict` reads (None: it does not predict)


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the validation metric; higher is better
    chunk: int | None = None  # validate this many examples at a time (None: all at once); loss and metric
    # must then be means over examples, so that the chunks' mean is the whole's
    windows: ClassVar[bool] = False  # its examples are overlapping windows of one sequence, a target per token
    discrete: ClassVar[bool] = False  # one class label per example: splits are stratified, checks count per class
    metrics: ClassVar[tuple[str, ...]] = ()  # what `metrics:` and metric tests may name (computed by `evaluate`)
    # how raw outputs of several models of this task combine (ensembles) and teach (distillation, `distill_losses`):
    # "probabilities" (their softmax averaged) or "values" (averaged); None: they do not
    blend: ClassVar[str | None] = None
    # what its bundles are used for (each checked by `check_use`):
    predicts: ClassVar[bool] = True  # its models take examples (rows, images, texts): Bundle.examples, sw2 predict,
    # a server's /v1/predict and the drift reference it watches (reference.json)
    generates: ClassVar[bool] = False  # its models write text after a prompt: `generate`, `stream`, /v1/generate
    samples: ClassVar[bool] = False  # its models make images from noise: `sample`, sw2 sample, /v1/sample
    exports: ClassVar[bool] = True  # sw2 export writes its network as an ONNX graph
    compresses: ClassVar[bool] = True  # sw2 compress quantises and prunes it, scored on examples

    # ---- the target (supervised tasks) -----------------------------------------------------------
    def fit_target(self, codec: Any, values: np.ndarray, target: str) -> None:
        """Learn the target's encoding from the training values into `codec` (sw2.tasks.target.TargetCodec:
        classes and their counts, or the mean and spread of a number)."""

    def encode_target(self, codec: Any, values: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def n_outputs(self, codec: Any) -> int:
        return 1

    def target_groups(self, values: np.ndarray) -> int:
        """How many groups a split must leave training rows of (the classes; 1 without classes)."""
        return 1

    def scorable(self, target: torch.Tensor) -> torch.Tensor:
        """Per example of encoded targets: can it be scored? (held-out examples that cannot are dropped)"""
        return torch.ones(len(target), dtype=torch.bool)

    # ---- training: what the engine calls ---------------------------------------------------------
    def loss(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return self.example_losses(out, y, label_smoothing).mean()

    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """The loss of each example (B values): what `loss` averages."""
        raise NotImplementedError

    def distill_losses(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Per example, how far the student's raw outputs are from the teacher's (knowledge distillation)."""
        raise NotImplementedError

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        raise NotImplementedError

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        """The bias that makes the untrained model predict the training prior."""
        raise NotImplementedError

    def init_loss(self, data: Any) -> tuple[float, str]:
        """The loss an untrained model at the prior should have on `data.train`, and why (pre-flight)."""
        raise NotImplementedError

    # ---- the run ---------------------------------------------------------------------------------
    def check_spec(self, spec: Spec) -> None:
        """Refuse (ValueError, naming the field) what this task cannot do with the spec's choices; an
        override calls this first. The checks live in sw2.task_rules, where the spec reads a built-in
        task's without importing it."""
        check_task(self, spec)

    def fill(self, spec: Spec) -> Spec:
        """`spec` with what it leaves unset decided by the task (sw2.spec.Spec._task_fills; control: the RL Zoo's
        hyper-parameters for the environment); the default leaves it as it is."""
        return spec

    def trainable(self, spec: Spec, data: Any, **options: Any) -> Trainable:
        """What `fit` trains for this task: the networks, the step, the stream of batches and how a checkpoint
        is judged (sw2.engine.trainable). The default learns a target from examples (sw2.tasks.learn:
        `options` are its `train`, `val`, `init_on`, `model` and `teaching`); a task that trains otherwise
        (two networks, rollouts, unlabelled data) overrides it."""
        from sw2.tasks.learn import from_examples

        return from_examples(self, spec, data, **options)

    def candidates(self, spec: Spec, data: Any) -> list[Any]:
        """The model options to train and pick from on val (sw2.models.candidates: `model: auto` on a table
        tries several)."""
        from sw2.models import candidates

        return candidates(spec.model, data.encoder, self, data.train.target)

    def search_space(self, spec: Spec, data: Any) -> dict[str, Any] | None:
        """What `sw2 tune` searches where the spec's `tune:` names nothing (field path -> sw2.spec distribution);
        None: the default of a model that learns from examples (sw2.tuning.space)."""
        return None

    def preflight(self, spec: Spec, data: Any) -> list[Any]:
        """The task's own pre-flight checks (sw2.preflight.Check) beside the built-in ones."""
        return []

    def tiny_example(self, folder: Path) -> TinyExample:
        """Write a tiny data set of this task into `folder` and return a spec that trains on it in seconds,
        deterministically (`deterministic`, one thread, fp32, no time budget): every registered task gives
        one, so that the conformance suite holds it to the contract."""
        raise NotImplementedError(f"task {self.name} gives no tiny_example; add one (see sw2.tasks.base.TinyExample)")

    def prepare(self, spec: Spec, root: Path) -> Any:
        """The data, cleaned, split and encoded: `train`, `val`, `test` TensorSets, `encoder`, `report`,
        `fingerprint`, and `raw_test` (what the model tests and the report score)."""
        raise NotImplementedError

    def load_encoder(self, state: dict[str, Any]) -> Any:
        """The encoder saved in a bundle's preprocess.json."""
        raise NotImplementedError

    def describe(self, data: Any) -> str:
        """The sizes of the prepared data, for the run's first line."""
        return f"train {len(data.train)}, val {len(data.val)}, test {len(data.test)}"

    def data_verdicts(self, data: Any) -> list[Verdict]:
        """The pre-flight's checks of the data itself."""
        return []

    def validate_tests(self, tests: list[Any], encoder: Any, examples: Any, root: Path) -> None:
        """Raise the one-line error a model test on `examples` would hit, before any time is spent (a task
        without model tests refuses them all)."""
        if tests:
            raise UserError(f"tests: task {self.name} has no model tests; remove tests: from the spec")

    def check_test_metric(self, test: Any, encoder: Any) -> None:
        """Refuse (UserError) a metric test this task's model cannot run; its metric's name was checked with
        the spec (Task.check_spec)."""

    def scores_of(self, subject: Any, examples: Any) -> dict[str, Any]:
        """The metrics of a model test's subject (sw2.evaluation.model_tests.Subject) on `examples`."""
        raise NotImplementedError

    def inputs_of(self, subject: Any, examples: Any) -> dict[str, torch.Tensor]:
        """The model's input tensors for `examples`."""
        raise NotImplementedError

    def unchanged(self, a: torch.Tensor, b: torch.Tensor, tolerance: float) -> torch.Tensor:
        """Per example: is output `b` (of a perturbed input) the same prediction as `a`? (invariance tests)"""
        raise UserError(f"tests: task {self.name} has no invariance tests")

    def right(self, out: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """Per example: is the prediction right? (must-get-right examples)"""
        raise UserError(f"tests: task {self.name} has no must-get-right examples")

    def what_the_net_sees(self, spec: Spec, data: Any, folder: Path) -> None:
        """Write one training batch as the model receives it into the bundle `folder` (pre-flight)."""

    def held_out(self, bundle: Bundle, spec: Spec, root: Path) -> HeldOut:
        """The held-out splits of `spec`'s data, for `sw2 report` and `sw2 test` on a trained bundle."""
        raise UserError(f"{bundle.path}: a {self.name} bundle has no held-out split sw2 reads back; see its commands")

    def examples_from(self, bundle: Bundle, path: Path) -> Any:
        """The examples of another data file that `bundle` can be scored on (model tests, reports)."""
        raise UserError(f"{path}: a {self.name} model is not scored on other data files; see its commands")

    def score_run(self, model: torch.nn.Module, data: Any, spec: Spec, result: FitResult) -> Scored:
        """The trained model's metrics on the val and test splits (and whatever else metrics.json holds)."""
        raise NotImplementedError

    def evaluate(self, outputs: torch.Tensor, y: torch.Tensor, encoder: Any) -> dict[str, Any]:
        """Metrics of outputs against encoded targets, beside the dumb baseline's."""
        raise NotImplementedError

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        """Whether `scores` (as `evaluate` gives them) beat the baseline beside them, and the figures."""
        raise NotImplementedError

    def write_files(self, folder: Path, data: Any, metrics: dict[str, Any]) -> None:
        """The task's own files in a bundle being written (e.g. confusion.png, samples.txt)."""

    def evaluate_file(self, bundle: Bundle, path: Path) -> dict[str, Any]:
        """A bundle's metrics on another data file."""
        raise UserError(f"{path}: a {self.name} model is not scored on other data files; see its commands")

    def report_sections(self) -> list[tuple[str, str, Any]]:
        """(anchor, title, section(run) -> html) of this task's part of report.html."""
        return []

    def sample_size(self, metrics: dict[str, Any]) -> str:
        """How many were scored for `metrics` (as `evaluate` gives them), for a table's title."""
        return f"{metrics.get('n', '?')} examples"

    # ---- using a bundle --------------------------------------------------------------------------
    def check_use(self, bundle: Bundle, use: str) -> None:
        """Refuse `use` of `bundle` ("predict", "serve", "export" or "compress") with a one-line UserError naming
        what to do, where it cannot take it. The default follows `predicts`, `generates`, `exports` and
        `compresses`, and refuses a bundle of several networks (model.json "modules") to all of them but a
        text generator's server: they run one network. A task whose bundles can overrides it."""
        guide = "see its task's commands (sw2 --help)"
        refusals = {
            "predict": (self.predicts, "it takes no examples; " + ("use sw2 generate" if self.generates else guide)),
            "serve": (self.predicts or self.generates or self.samples, "sw2 serve answers examples, prompts or "
                      "sample requests: it takes none; "
                      "use it from Python (sw2.load)"),  # fmt: skip
            "export": (self.exports, "sw2 export cannot write it as a graph; use the bundle itself (sw2.load)"),
            "compress": (self.compresses, "sw2 compress takes a model of examples; "
                         + ("sw2 export gives its ONNX graph" if self.exports else "use the bundle as it is")),
        }  # fmt: skip
        able, refusal = refusals[use]
        if not able:
            raise UserError(f"{bundle.path} is a {self.name} model: {refusal}")
        networks = bundle.networks
        if len(networks) > 1 and (use != "serve" or self.predicts):
            what = {"predict": "a prediction", "serve": "sw2 serve's /v1/predict"}.get(use, f"sw2 {use}")
            raise UserError(
                f"{bundle.path}: this {self.name} bundle holds {len(networks)} networks ({', '.join(networks)}) and "
                f"{what} runs one; {guide}"
            )

    def read_examples(self, bundle: Bundle, data: Any) -> Any:
        """The examples of `data` (a path, an array, rows...) where this task reads them its own way (a policy:
        observations), else None: Bundle.examples reads rows and images."""
        return None

    def predict(self, bundle: Bundle, data: Any) -> np.ndarray:
        raise UserError(f"{bundle.path}: a {self.name} model does not predict; see its task's commands")

    def predict_proba(self, bundle: Bundle, data: Any) -> np.ndarray:
        raise UserError(f"predict_proba is for classifiers; this bundle does {self.name}")

    def prediction_rows(self, bundle: Bundle, data: Any, top: int) -> list[dict[str, Any]]:
        """Rows of `sw2 predict`'s CSV (id, prediction, ...)."""
        raise UserError(f"{bundle.path}: a {self.name} model does not predict rows; see its task's commands")

    def answers(self, encoder: Any, outputs: torch.Tensor, top: int) -> list[dict[str, Any]]:
        """What a server answers for each example, from the network's raw outputs (JSON-ready)."""
        raise UserError(f"a {self.name} model does not predict examples; see its task's endpoints")

    def generate(self, bundle: Bundle, prompt: str, **options: Any) -> str:
        raise UserError(f"{bundle.path} is a {self.name} model; generate needs task: generate_text")

    def stream(self, bundle: Bundle, prompt: str = "\n", **options: Any) -> Iterator[str]:
        """The text of `generate` (the same options), piece by piece as it is written (a server's stream)."""
        raise UserError(f"a {self.name} model does not stream text; see its task's commands (sw2 --help)")

    def sample(
        self, bundle: Bundle, n: int, classes: Any = None, seed: int = 0, until: Callable[[], None] | None = None
    ) -> torch.Tensor:
        """`n` new images (uint8, n x C x H x W), of `classes` where the model is class-conditional; `until`,
        called between pieces of the work, raises to stop it (a server's deadline)."""
        raise UserError(f"{bundle.path} is a {self.name} model; sampling images needs task: generate_image")

    def report_scores(self, run: Any) -> dict[str, Any]:
        """Fill `run` (sw2.run_report.Run) with the outputs its sections read and return the scores of the
        examples it reports on."""
        raise UserError(f"report.html: task {self.name} has no report of its own scores")
