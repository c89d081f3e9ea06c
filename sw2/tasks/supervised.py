"""What classify and regress (and any task that learns a target column from examples) share: the data
pipeline of tables, images and text columns, scoring the held-out splits, other data files, predictions
from a bundle and the model tests' view of the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch

from sw2.data.dataset import Prepared, drop_unseen, encode, prepare
from sw2.data.encode import Encoder, plain
from sw2.data.examples import Examples
from sw2.data.images import UNLABELLED
from sw2.data.sources import load_other
from sw2.engine.predict import predict
from sw2.errors import UserError
from sw2.evaluation.model_tests import validate
from sw2.preflight.data_checks import data_verdicts
from sw2.preflight.seen import what_the_net_sees
from sw2.task_rules import check_supervised
from sw2.tasks.base import HeldOut, Scored, Task, TinyExample
from sw2.tasks.target import TargetCodec

if TYPE_CHECKING:
    from sw2.bundle import Bundle
    from sw2.engine.result import FitResult
    from sw2.preflight.verdict import Verdict
    from sw2.spec import Spec


def labelled(examples: Examples, path: Path) -> Examples:
    """`examples` to be scored, refused where they are images without classes (nothing to score them by)."""
    if examples.images is not None and len(examples) and (np.asarray(examples.target) == UNLABELLED).all():
        raise UserError(f"{path}: the images lie in one folder, without classes; lay them out as "
                        "<folder>/<class>/<image> to score a model on them")  # fmt: skip
    return examples


class Supervised(Task):
    """A task that learns a target column from examples; subclasses say how the target is encoded, the loss,
    the metrics and what a prediction is."""

    leak_score: ClassVar[str | None] = None  # how the pre-flight scores one column alone against the target:
    # "accuracy" (a class label), "r2" (a number), None (no leak check)

    def check_spec(self, spec: Spec) -> None:
        """A language model's choices (a text file, a decoder model, the char tokenizer) are refused."""
        super().check_spec(spec)
        check_supervised(spec)

    def tiny_example(self, folder: Path) -> TinyExample:
        """240 rows of three numbers whose first two decide the target (`tiny_target`), an mlp of 8 epochs, and
        a metric test at a bound any learner clears."""
        rng = np.random.default_rng(0)
        x = rng.normal(size=(240, 3))
        frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": self.tiny_target(x)})
        frame.to_csv(folder / "tiny.csv", index=False)
        frame.drop(columns="y").head(5).to_csv(folder / "new.csv", index=False)
        train = {"epochs": 8, "batch_size": 32, "lr": 0.01, "deterministic": True, "threads": 1, "precision": "fp32"}
        spec = {"name": f"tiny-{self.name}", "task": self.name, "target": "y", "model": {"name": "mlp"},
                "data": {"path": "tiny.csv", "split": {"val": 0.2, "test": 0.2}}, "train": train,
                "tests": [{"kind": "metric", "metric": self.metric, "min": 0.0}]}  # fmt: skip
        rows = frame.drop(columns="y").head(3).to_dict(orient="records")
        return TinyExample(spec, ("/v1/predict", {"rows": rows}), "new.csv")

    def tiny_target(self, x: np.ndarray) -> np.ndarray:
        """The tiny example's target from its numbers: a class by the sign of x1 + x2."""
        return np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")

    def prepare(self, spec: Spec, root: Path) -> Prepared:
        return prepare(spec, root, self)

    def target_codec(self, values: np.ndarray, target: str) -> TargetCodec:
        """The target's encoding learnt from the training split's `values` (the task's `fit_target`); a
        target of one value is refused: there is nothing to learn."""
        series = pd.Series(values)
        if series.nunique() < 2 and plain(series.iloc[0]) == UNLABELLED:
            raise UserError(
                f"data: the images lie in one folder, without classes; lay them out as <folder>/<class>/<image> "
                f"for task {self.name} (task generate_image learns from unlabelled images)"
            )
        if series.nunique() < 2:
            raise UserError(
                f"target '{target}' has a single value ({plain(series.iloc[0])!r}) in the training data; "
                f"the model needs at least two different values to learn from"
            )
        codec = TargetCodec(self)
        self.fit_target(codec, values, target)
        return codec

    def load_encoder(self, state: dict[str, Any]) -> Encoder:
        """preprocess.json: the input encoder and, under "target", the task's target codec (a bundle written
        before the codec moved keeps its target fields beside the input fields, with the task's name)."""
        state = dict(state)
        if "target" in state:
            target = state.pop("target")
        else:
            state.pop("task", None)
            names = ("classes", "class_counts", "target_mean", "target_std")
            target = {k: state.pop(k) for k in names if k in state}
        return Encoder.from_json(state, TargetCodec.from_json(self, target))

    def data_verdicts(self, data: Prepared) -> list[Verdict]:
        return data_verdicts(data, by_class=self.discrete, leak=self.leak_score)

    def validate_tests(self, tests: list[Any], encoder: Encoder, examples: Examples, root: Path) -> None:
        validate(tests, self, encoder, examples, root)

    def score_run(self, model: torch.nn.Module, data: Prepared, spec: Spec, result: FitResult) -> Scored:
        scored = Scored()
        for split, tensors in (("val", data.val), ("test", data.test)):
            if len(tensors):
                scored.outputs[split] = predict(model, tensors.inputs, tta=spec.augment.tta)
                scored.metrics[split] = self.evaluate(scored.outputs[split], tensors.target, data.encoder)
        return scored

    def what_the_net_sees(self, spec: Spec, data: Prepared, folder: Path) -> None:
        what_the_net_sees(spec, data, folder)

    def held_out(self, bundle: Bundle, spec: Spec, root: Path) -> HeldOut:
        p = self.prepare(spec, root)
        return HeldOut(p.raw_test, p.scored_val, p.raw_test, p.fingerprint, train=p.raw_train)

    def examples_from(self, bundle: Bundle, path: Path) -> Examples:
        """The examples of `path` whose label the model saw (the others cannot be scored)."""
        examples = labelled(load_other(bundle.spec.data, path, bundle.spec.target), path)
        return drop_unseen(encode(bundle.encoder, examples), examples, self)[1]

    def evaluate_file(self, bundle: Bundle, path: Path) -> dict[str, Any]:
        examples = labelled(load_other(bundle.spec.data, path, bundle.spec.target), path)
        tensors, _, dropped = drop_unseen(encode(bundle.encoder, examples), examples, self)
        outputs = predict(bundle.model, tensors.inputs, tta=bundle.spec.augment.tta)
        return {**self.evaluate(outputs, tensors.target, bundle.encoder), "dropped_unseen_labels": dropped}

    def report_scores(self, run: Any) -> dict[str, Any]:
        if run.outputs is None:
            run.outputs = run.b.outputs(run.test)
        if run.val is not None and run.val_outputs is None:
            run.val_outputs = run.b.outputs(run.val)
        run.y = run.b.encoder.target(run.test.target)
        return self.evaluate(run.outputs, run.y, run.b.encoder) if len(run.test) else {}

    # ---- the model tests' view of outputs ---------------------------------------------------------
    def inputs_of(self, subject: Any, examples: Examples) -> dict[str, torch.Tensor]:
        return subject.encoder.inputs(examples)

    def scores_of(self, subject: Any, examples: Examples) -> dict[str, Any]:
        outputs = subject.outputs(examples)
        return self.evaluate(outputs, subject.encoder.target(examples.target), subject.encoder)

    def check_test_metric(self, test: Any, encoder: Encoder) -> None:
        """Refuse a metric test of a class the model does not have (UserError); its metric's name was checked
        with the spec (Task.check_spec)."""
        if test.label is not None and str(test.label) not in map(str, encoder.classes or []):
            raise UserError(f"tests: label '{test.label}' is not a class; classes: {encoder.classes}")
