"""Model tests: expectations a trained model must meet, checked the way code is unit-tested.

The spec's `tests:` list holds them (sw2.spec.MetricTest, LatencyTest, InvarianceTest, ExamplesTest);
each kind is checked by a function registered under its name. `run_tests` returns one Outcome a check
(a `by:` metric test gives one per slice); `junit_xml` renders them for CI.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from sw2 import where
from sw2.data.encode import Encoder
from sw2.data.examples import Examples
from sw2.data.sources import load_other
from sw2.engine.predict import predict
from sw2.errors import UserError
from sw2.plugins import TASKS
from sw2.registry import Registry
from sw2.spec import ExamplesTest, InvarianceTest, LatencyTest, MetricTest, Spec

if TYPE_CHECKING:
    from sw2.tasks import Task


@dataclass
class Outcome:
    name: str
    passed: bool
    value: float
    bound: str  # what was required, e.g. ">= 0.95"
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Subject:
    """What the tests look at: a model with its encoder and TTA, the test examples, and the folder that
    relative paths in the tests start from. `runner` (a bundle's `run`: another backend, a compressed graph)
    computes the outputs instead of the model in eager PyTorch."""

    model: nn.Module
    encoder: Any
    spec: Spec
    examples: Any  # Examples; a language model's test windows
    root: Path
    runner: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None

    @property
    def task(self) -> Task:
        return TASKS.get(self.spec.task)

    def outputs(self, ex: Any, inputs: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        inputs = inputs or self.task.inputs_of(self, ex)
        if self.runner is not None:
            return self.runner(inputs)
        return predict(self.model, inputs, tta=self.spec.augment.tta)

    def scores(self, ex: Any) -> dict[str, Any]:
        return self.task.scores_of(self, ex)


CHECKS: Registry[Callable[[Any, Subject], list[Outcome]]] = Registry("model test")


def _bound(value: float, low: float | None, high: float | None) -> tuple[bool, str]:
    ok = (low is None or value >= low) and (high is None or value <= high)
    parts = ([f">= {low:g}"] if low is not None else []) + ([f"<= {high:g}"] if high is not None else [])
    return ok, " and ".join(parts)


def _metric_value(m: dict[str, Any], test: MetricTest) -> float:
    if test.label is None:
        if test.metric not in m:
            raise UserError(f"tests: metric '{test.metric}' does not apply to this task")
        return float(m[test.metric])
    row = next((r for r in m.get("per_class", []) if str(r["class"]) == str(test.label)), None)
    if row is None:
        raise UserError(f"tests: class '{test.label}' is not one of the model's classes {m.get('classes')}")
    return float(row["recall" if test.metric == "accuracy" else test.metric])


def _slices(test: MetricTest, ex: Examples) -> list[tuple[str, Examples]]:
    if test.where is None and test.by is None:
        return [("", ex)]
    assert ex.frame is not None  # validate() checked it
    frame = ex.frame.reset_index(drop=True)
    if test.by is not None:
        groups = frame.groupby(test.by, dropna=False).indices
        return [
            (f"{test.by}={k}", ex.take(np.asarray(v))) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))
        ]
    try:
        mask = where.parse(test.where or "").evaluate(frame)  # never pandas' eval: it runs Python
    except ValueError as err:
        raise UserError(f"tests: where: {test.where!r}: {err}") from None
    return [(test.where or "", ex.take(np.flatnonzero(mask)))]


@CHECKS.register("metric")
def check_metric(test: MetricTest, s: Subject) -> list[Outcome]:
    out = []
    for name, part in _slices(test, s.examples):
        title = " ".join(x for x in (test.metric, f"[{test.label}]" if test.label else "", name) if x)
        if len(part) == 0:
            out.append(Outcome(title, False, float("nan"), "", "the slice is empty"))
            continue
        value = _metric_value(s.scores(part), test)
        ok, bound = _bound(value, test.min, test.max)
        out.append(Outcome(title, ok, value, bound, f"{len(part)} examples"))
    return out


@CHECKS.register("latency")
def check_latency(test: LatencyTest, s: Subject) -> list[Outcome]:
    n = min(test.examples, len(s.examples))
    times = []
    for i in range(n):
        one = s.examples.take(np.array([i]))
        t0 = time.perf_counter()
        s.outputs(one)
        times.append(time.perf_counter() - t0)
    p95 = float(np.percentile(np.array(times[1:] or times) * 1000, 95))  # the first call warms up
    ok, bound = _bound(p95, None, test.max_p95_ms)
    return [
        Outcome(
            "latency p95 (ms)", ok, p95, bound, f"{n} single-example predictions, {torch.get_num_threads()} threads"
        )
    ]


def _perturbed(test: InvarianceTest, inputs: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = dict(inputs)
    if "image" in inputs:
        x = inputs["image"]
        if test.transform == "flip":
            out["image"] = x.flip(3)
        else:
            noisy = x.float() + torch.randn(x.shape, generator=g) * (test.noise * 255)
            out["image"] = noisy.round().clamp(0, 255).to(x.dtype)
        return out
    if test.transform == "flip":
        raise UserError("tests: invariance flip is for images; use transform: noise for table rows")
    if "num" not in inputs:
        raise UserError("tests: invariance noise needs numeric columns; this model has none")
    out["num"] = inputs["num"] + torch.randn(inputs["num"].shape, generator=g) * test.noise  # columns are standardised
    return out


@CHECKS.register("invariance")
def check_invariance(test: InvarianceTest, s: Subject) -> list[Outcome]:
    inputs = s.encoder.inputs(s.examples)
    a, b = s.outputs(s.examples, inputs), s.outputs(s.examples, _perturbed(test, inputs))
    same = s.task.unchanged(a, b, test.tolerance)  # type: ignore[attr-defined]
    share = same.float().mean().item()
    ok, bound = _bound(share, test.min_share, None)
    what = "flip" if test.transform == "flip" else f"noise {test.noise:g}"
    return [Outcome(f"invariance to {what}", ok, share, bound, f"share unchanged over {len(same)} examples")]


@CHECKS.register("examples")
def check_examples(test: ExamplesTest, s: Subject) -> list[Outcome]:
    ex = load_other(s.spec.data, s.root / test.path, s.spec.target)  # validate() checked the path
    truth = s.encoder.target(ex.target)
    right = s.task.right(s.outputs(ex), truth)  # type: ignore[attr-defined]
    wrong = [str(i) for i, r in zip(ex.ids, right.tolist()) if not r][:5]
    share = right.float().mean().item() if len(right) else 0.0
    ok, bound = _bound(share, test.min_share, None)
    detail = f"{int(right.sum())}/{len(right)} right" + (f"; wrong: {', '.join(wrong)}" if wrong else "")
    return [Outcome(f"must get right: {test.path}", ok, share, bound, detail)]


def validate(tests: list[Any], task: Any, encoder: Encoder, examples: Examples, root: Path) -> None:
    """Raise the one-line error a test of a supervised `task` would hit, before any training time is spent."""
    for t in tests:
        if isinstance(t, MetricTest):
            task.check_test_metric(t, encoder)
            if (t.where or t.by) and examples.frame is None:
                raise UserError("tests: where/by slice table rows; drop them for image data")
            if t.by is not None and t.by not in examples.frame.columns:
                raise UserError(
                    f"tests: by: no column '{t.by}'; columns: {', '.join(map(str, examples.frame.columns))}"
                )
            if t.where is not None:
                _slices(t, examples)
        if isinstance(t, ExamplesTest) and not (root / t.path).exists():
            raise UserError(f"tests: {root / t.path}: must-get-right examples not found; fix the path")
        if isinstance(t, InvarianceTest):
            if t.transform == "flip" and encoder.image_shape is None:
                raise UserError("tests: invariance flip is for images; use transform: noise for table rows")
            if t.transform == "noise" and encoder.image_shape is None and not encoder.numeric:
                raise UserError("tests: invariance noise needs images or numeric columns; this data has neither")
        if isinstance(t, LatencyTest | InvarianceTest) and len(examples) == 0:
            raise UserError("tests: the test split is empty; set data.split.test or give --data")


def run_tests(s: Subject) -> list[Outcome]:
    """Every test of the spec, in order."""
    s.task.validate_tests(s.spec.tests, s.encoder, s.examples, s.root)
    return [o for t in s.spec.tests for o in CHECKS.get(t.kind)(t, s)]


def junit_xml(outcomes: list[Outcome], suite: str) -> str:
    """JUnit XML, the format CI systems read test results from."""
    failures = sum(not o.passed for o in outcomes)
    root = ET.Element("testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures), errors="0")
    for o in outcomes:
        case = ET.SubElement(root, "testcase", classname=suite, name=o.name)
        text = f"value {o.value:.6g}, required {o.bound}; {o.detail}".strip("; ")
        if o.passed:
            ET.SubElement(case, "system-out").text = text
        else:
            ET.SubElement(case, "failure", message=text).text = text
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
