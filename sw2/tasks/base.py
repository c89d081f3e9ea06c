"""What a task plug-in provides. Every method the pipeline, the engine, the bundle, the report, the model
tests and the pre-flight may call on a task is named here, with a default or a NotImplementedError.

Three groups: the target (how a supervised task encodes its labels; a language model has none), training
(loss, score, output bias: the engine's only view of a task) and the run (data, scores, predictions,
report, checks), which the task implements by calling the layers below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from sw2.errors import UserError
from sw2.registry import did_you_mean

if TYPE_CHECKING:
    from sw2.bundle import Bundle
    from sw2.engine.loop import FitResult
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


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the validation metric; higher is better
    chunk: int | None = None  # validate this many examples at a time (None: all at once); loss and metric
    # must then be means over examples, so that the chunks' mean is the whole's
    discrete: ClassVar[bool] = False  # one class label per example: splits are stratified, checks count per class
    metrics: ClassVar[tuple[str, ...]] = ()  # what `metrics:` and metric tests may name (computed by `evaluate`)
    # how raw outputs of several models of this task combine (ensembles) and teach (distillation, `distill_losses`):
    # "probabilities" (their softmax averaged) or "values" (averaged); None: they do not
    blend: ClassVar[str | None] = None

    # ---- the target (supervised tasks) -----------------------------------------------------------
    def fit_target(self, encoder: Any, values: np.ndarray, target: str) -> None:
        """Learn the target's encoding from the training values into `encoder` (its target fields)."""

    def encode_target(self, encoder: Any, values: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def n_outputs(self, encoder: Any) -> int:
        return 1

    def target_groups(self, values: np.ndarray) -> int:
        """How many groups a split must leave training rows of (the classes; 1 without classes)."""
        return 1

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
        override calls this first."""
        if spec.train.distill is not None and self.blend is None:
            raise ValueError(f"train.distill: task {self.name} cannot learn from a teacher; remove train.distill")
        if spec.train.snapshots and self.blend is None:
            raise ValueError(f"train.snapshots: a {self.name} model's outputs cannot be averaged; remove it")
        named = [("metrics", m) for m in spec.metrics]
        named += [(f"tests.{i}.metric", t.metric) for i, t in enumerate(spec.tests) if t.kind == "metric"]
        for field_, m in named:
            if m not in self.metrics:
                raise ValueError(
                    f"{field_}: '{m}' is not a metric of task {self.name}; {did_you_mean(m, self.metrics)}"
                )

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
        raise NotImplementedError

    def examples_from(self, bundle: Bundle, path: Path) -> Any:
        """The examples of another data file that `bundle` can be scored on (model tests, reports)."""
        raise NotImplementedError

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
        raise NotImplementedError

    def report_sections(self) -> list[tuple[str, str, Any]]:
        """(anchor, title, section(run) -> html) of this task's part of report.html."""
        return []

    # ---- using a bundle --------------------------------------------------------------------------
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

    def report_scores(self, run: Any) -> dict[str, Any]:
        """Fill `run` (sw2.run_report.Run) with the outputs its sections read and return the scores of the
        examples it reports on."""
        raise NotImplementedError
