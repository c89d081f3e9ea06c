"""The tail every run that writes a bundle shares (a training run, an ensemble): the model tests on the held-out
examples, then in the bundle being written the task's files, the tests' JUnit XML, the drift reference
`sw2 serve` measures against, attached files, and report.html last (it reads the files before it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sw2 import log
from sw2.bundle import Bundle
from sw2.engine import threads
from sw2.evaluation import reference
from sw2.evaluation.model_tests import Outcome, Subject, junit_xml, run_tests
from sw2.run_report import write_report
from sw2.spec import Spec
from sw2.tasks.base import Scored, Task


def model_tests(model: torch.nn.Module, data: Any, spec: Spec, root: Path, metrics: dict[str, Any]) -> list[Outcome]:
    """The spec's model tests on the held-out examples (none without tests), recorded in `metrics`."""
    outcomes = run_tests(Subject(model, data.encoder, spec, data.raw_test, root)) if spec.tests else []
    if outcomes:
        metrics["tests"] = [o.to_json() for o in outcomes]
    return outcomes


def finish(
    folder: Path,
    task: Task,
    data: Any,
    spec: Spec,
    metrics: dict[str, Any],
    scored: Scored,
    outcomes: list[Outcome],
    attach: dict[str, Path] | None = None,
) -> None:
    """Write the run's remaining files into the bundle `folder` being written; report.html last."""
    task.write_files(folder, data, metrics)
    for file, text in scored.files.items():
        (folder / file).write_text(text, encoding="utf-8")
    if outcomes:
        (folder / "tests.xml").write_text(junit_xml(outcomes, spec.name))
    if task.predicts and hasattr(
        data, "raw_train"
    ):  # what `sw2 serve` measures the drift of the examples it is sent against
        reference.write(folder, data, scored.outputs, spec.serve)
    for name, source in (attach or {}).items():
        (folder / name).write_bytes(source.read_bytes())
    if "test" in metrics or "val" in metrics:  # last: the report reads the files above
        with threads.at_last_choice():  # its forward passes (saliency, calibration) are not a training loop
            report_at_training(Bundle(folder), data, scored.outputs)


def report_at_training(bundle: Bundle, data: Any, outputs: dict[str, torch.Tensor]) -> None:
    """report.html on the test split (or on val when the spec has none). A failure here must not cost
    the trained model, so it is reported and the bundle is written without the report."""
    try:
        report_held_out(bundle, data.raw_test if len(data.test) else data.test, data.scored_val, outputs)
    except Exception as err:  # any failure: keep the model, say why
        log.warning(f"report.html not written ({type(err).__name__}: {err}); retry with sw2 report BUNDLE --debug")


def report_held_out(
    bundle: Bundle, test: Any, val: Any, outputs: dict[str, torch.Tensor] | None = None, **options: Any
) -> Path:
    """report.html scored on the test split, or on the val split where there is no test split."""
    outputs = outputs or {}
    if len(test):
        return write_report(bundle, test, outputs.get("test"), val=val, val_outputs=outputs.get("val"), **options)
    return write_report(bundle, val, outputs.get("val"), scored_on="validation split (no test split)", **options)
