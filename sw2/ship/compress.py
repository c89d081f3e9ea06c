"""`sw2 compress`: a bundle made smaller and faster, measured side by side with the original.

Variants: int8 (the ONNX graph quantised: sw2.ship.quantize), pruned (whole channels removed and briefly
fine-tuned: sw2.ship.prune_channels) and, given both, pruned-int8. Each is measured beside eager fp32 (the
bundle's PyTorch module) and ONNX fp32 (its exported graph): the task's metric on the test split, file size,
latency p50/p95 at batch 1 and throughput at batch 64 (sw2.ship.latency). Each variant is a normal bundle
(model.onnx is its compressed graph; a pruned variant's model.json and model.safetensors are the smaller
network, so it also runs on the torch backend; an int8 variant keeps the fp32 weights for the torch backend)
that runs the spec's model tests on the ONNX backend; one that fails them is not written unless `force`.

    OUT/compress.json   the table, settings and outcomes      OUT/compress.md   the table in Markdown
    OUT/int8/  OUT/pruned/  OUT/pruned-int8/                   bundles, each with its compress.json
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model

from sw2 import log
from sw2.bundle import Bundle, write_atomic
from sw2.data.dataset import TensorSet, drop_unseen, encode
from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.evaluation.model_tests import Outcome, Subject, junit_xml, run_tests
from sw2.outputs import check_replaceable
from sw2.ship import prune_channels, quantize
from sw2.ship.export import to_onnx
from sw2.ship.latency import Runner, measure
from sw2.spec import Spec

MARKS = ("compress.json",)
WRITES = ("compress.json", "compress.md", "int8", "pruned", "pruned-int8")
WHAT = "sw2 compress output"
# a variant's files taken from the bundle as they are; provenance.json (sw2.provenance) stays valid in a variant:
# it binds the spec's name, task, target and named paths, which spec.yaml copied with it keeps, and the test
# split, which a variant shares, so `sw2 report/test VARIANT` reads the data as the original does, without --spec
COPIED = ("preprocess.json", "spec.yaml", "fingerprint.json", "reference.json", "provenance.json")


@dataclass
class Options:
    quantize: str | None = "int8"
    prune: float | None = None  # the share of each hidden layer's channels removed
    fine_tune: float = 0.25  # the pruned model trains this share of the recipe's epochs and time budget (up to 4x)
    distill: float = 0.0  # the share of the pruned model's fine-tuning loss from the unpruned model (0: labels only;
    # docs/benchmarks.md: on CIFAR under its time budget 0.5 lost 0.9 points, the teacher costing steps)
    calibration: int = 256  # training examples that calibrate static quantisation and score channels
    calls: int = 200  # single-example calls timed per variant (and calls / 100 seconds of batches)
    force: bool = False  # write a variant that fails its model tests

    def check(self) -> None:
        if self.quantize not in (None, "int8"):
            raise UserError(f"--quantize: '{self.quantize}' is not supported; use --quantize int8")
        if self.prune is not None and not 0 < self.prune < 1:
            raise UserError(f"--prune: {self.prune:g} is not a share of channels; give a number between 0 and 1")
        if self.quantize is None and self.prune is None:
            raise UserError("sw2 compress: give --quantize int8, --prune SHARE (e.g. 0.5), or both")
        if self.calls < 1:
            raise UserError(f"--calls: {self.calls}; give at least 1 single-example call to time")
        if not 0 < self.fine_tune <= 4:
            raise UserError(
                f"--fine-tune: {self.fine_tune:g} is not a share of the recipe; give a number in (0, 4] (1: as long as "
                "the original training)"
            )
        if not 0 <= self.distill <= 1:
            raise UserError(f"--distill: {self.distill:g} is not a share of the loss; give a number in [0, 1]")


@dataclass
class Splits:
    """The spec's data encoded as the bundle encodes: train (calibration, fine-tuning), val (choices), test
    (the table's metric) and the raw examples the model tests run on."""

    train: TensorSet
    val: TensorSet
    test: TensorSet
    tested: Examples
    scored_on: str


@dataclass
class Variant:
    name: str  # the table's row
    runtime: str  # torch | onnx
    run: Runner
    size: int  # bytes of the file that holds the network
    parameters: int
    folder: str | None = None  # the subfolder it is written to (None: a reference, not written)
    record: dict[str, Any] = field(default_factory=dict)  # what else its compress.json says


@dataclass
class Compressed:
    out: Path
    scored_on: str  # the split the table's metric is on
    rows: list[dict[str, Any]]
    written: list[str]
    refused: list[str]  # variants that failed their model tests and were not written
    forced: list[str]  # variants that failed them and were written anyway (force)
    outcomes: dict[str, list[Outcome]]


def compress(bundle: Bundle, spec: Spec, root: Path, out: Path, options: Options) -> Compressed:
    """Write the compressed variants of `bundle` into `out`; `spec` (trusted, its paths from `root`) names the
    data: train for calibration and fine-tuning, val for choices, test for the table and the model tests."""
    options.check()
    check_out(bundle, out)
    bundle.task.check_use(bundle, "compress")
    splits = _splits(bundle, spec, root)
    result = Compressed(out, splits.scored_on, [], [], [], [], {})

    def fill(folder: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            variants = _variants(bundle, splits, options, folder, Path(tmp))
            for v in variants:
                result.rows.append(_row(v, bundle, splits, options.calls))
                log.info(f"sw2: {v.name}: {_line(result.rows[-1])}")
            for v in variants:
                if v.folder is not None:
                    _finish(v, bundle, spec, root, splits, folder / v.folder, options, result)
        record = {"source": str(bundle.path), "scored_on": splits.scored_on, "options": options.__dict__}
        record["tta"] = bundle.spec.augment.tta  # every runtime applies the spec's test-time augmentation
        record |= {"rows": result.rows, "written": result.written, "refused": result.refused, "forced": result.forced}
        (folder / "compress.json").write_text(json.dumps(record, indent=2, default=str))
        (folder / "compress.md").write_text(markdown(result.rows) + "\n")

    write_atomic(out, fill, marks=MARKS, what=WHAT, writes=WRITES)
    return result


def check_out(bundle: Bundle, out: Path) -> None:
    """Refuse, before any work, an `out` that is the bundle, lies inside it, or holds other files."""
    if out.resolve().is_relative_to(bundle.path.resolve()):
        raise UserError(f"--out {out}: lies inside the bundle {bundle.path}; give a folder outside it")
    check_replaceable(out, MARKS, WHAT, WRITES)


def _splits(b: Bundle, spec: Spec, root: Path) -> Splits:
    data = b.task.prepare(spec, root)
    if data.fingerprint != b.fingerprint.get("data_sha256", data.fingerprint):
        log.warning("the data changed since this model was trained (its fingerprint differs)")
    train, val = (drop_unseen(encode(b.encoder, ex), ex, b.task)[0] for ex in (data.raw_train, data.scored_val))
    test, tested, _ = drop_unseen(encode(b.encoder, data.raw_test), data.raw_test, b.task)
    if len(test):
        return Splits(train, val, test, tested, "test split")
    if not len(val):
        raise UserError(f"{b.path}: its spec's data has neither a test nor a validation split to score on")
    return Splits(train, val, val, data.scored_val, "validation split (no test split)")


def _sample(ts: TensorSet, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """`n` examples at random: the training split is ordered by class."""
    pick = torch.randperm(len(ts), generator=torch.Generator().manual_seed(seed))[:n]
    return {k: v[pick] for k, v in ts.inputs.items()}


def _variants(b: Bundle, s: Splits, o: Options, out: Path, tmp: Path) -> list[Variant]:
    """The references (eager fp32, ONNX fp32) and the variants, each variant's bundle written under `out`."""
    arch = json.loads((b.path / "model.json").read_text())
    example = {k: v[:2] for k, v in s.test.inputs.items()}
    ref = _bundle_files(b, tmp / "fp32", b.model, arch["kwargs"], example)
    weights = (b.path / "model.safetensors").stat().st_size
    variants = [
        Variant("eager fp32", "torch", b.run, weights, _params(b.model)),
        Variant("onnx fp32", "onnx", Bundle(ref, backend="onnx").run, _onnx_size(ref), _params(b.model)),
    ]
    calibration = _sample(s.train, o.calibration)
    if o.quantize:
        variants.append(_int8(b, ref, out / "int8", s, calibration, "onnx int8", tmp))
    if o.prune:
        pruned_kwargs, model = prune_channels.prune(b.model, arch["name"], arch["kwargs"], o.prune, calibration)
        teacher = b.model if o.distill else None
        built = (arch["name"], pruned_kwargs)
        model = prune_channels.fine_tune(model, built, b.task, s, b.spec, o.fine_tune, teacher, o.distill)
        folder = _bundle_files(b, out / "pruned", model.eval(), pruned_kwargs, example)
        how = {"prune": o.prune, "widths": pruned_kwargs["widths"], "fine_tune": o.fine_tune, "distill": o.distill}
        n, weights = _params(model), (folder / "model.safetensors").stat().st_size
        variants.append(Variant("pruned eager fp32", "torch", Bundle(folder).run, weights, n))
        onnx = Bundle(folder, backend="onnx").run
        variants.append(Variant("pruned onnx fp32", "onnx", onnx, _onnx_size(folder), n, "pruned", dict(how)))
        if o.quantize:
            variants.append(_int8(b, folder, out / "pruned-int8", s, calibration, "pruned onnx int8", tmp))
            variants[-1].record |= how
    return variants


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _onnx_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.name.startswith("model.onnx"))  # with external data


def _bundle_files(
    b: Bundle,
    folder: Path,
    model: torch.nn.Module,
    kwargs: dict[str, Any],
    example: dict[str, torch.Tensor],
) -> Path:
    """A bundle folder holding `model` (its weights, model.json, its exported model.onnx) with `b`'s encoder
    and spec."""
    folder.mkdir(parents=True)
    for f in COPIED:
        if (b.path / f).exists():
            shutil.copyfile(b.path / f, folder / f)
    name = json.loads((b.path / "model.json").read_text())["name"]
    (folder / "model.json").write_text(json.dumps({"name": name, "kwargs": kwargs}, indent=2))
    save_model(model, str(folder / "model.safetensors"), force_contiguous=True)
    exporter = to_onnx(model.eval(), example, folder / "model.onnx")
    log.info(f"sw2: {folder.name}: exported to ONNX ({exporter})")
    return folder


def _int8(
    b: Bundle, src: Path, folder: Path, s: Splits, calibration: dict[str, torch.Tensor], name: str, tmp: Path
) -> Variant:
    """The int8 variant of the bundle folder `src` in `folder`: quantised per channel or per tensor, whichever
    scores better on the validation split (per tensor on a tie: the smaller graph)."""
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("model.onnx*"))
    method = quantize.method_for(src / "model.onnx")
    scores, trials = {}, {}
    for per_channel in (False, True):
        quantize.quantize(src / "model.onnx", folder / "model.onnx", method, per_channel, calibration)
        scores[per_channel] = _metric(Bundle(folder, backend="onnx").run, b, s.val if len(s.val) else s.test)
        trials[per_channel] = tmp / f"{folder.name}-{per_channel}.onnx"
        shutil.move(folder / "model.onnx", trials[per_channel])
    best = scores[True] > scores[False]
    shutil.move(trials[best], folder / "model.onnx")
    log.info(f"sw2: {name}: {method} quantisation, per {'channel' if best else 'tensor'} (val: {scores})")
    record = {"quantize": "int8", "method": method, "per_channel": best}
    record |= {"val_per_tensor": scores[False], "val_per_channel": scores[True]}
    run, size = Bundle(folder, backend="onnx").run, _onnx_size(folder)
    return Variant(name, "onnx", run, size, _params(Bundle(folder).model), folder.name, record)


@torch.no_grad()
def _outputs(run: Runner, inputs: dict[str, torch.Tensor], batch: int = 256) -> torch.Tensor:
    n = len(next(iter(inputs.values())))
    return torch.cat([run({k: v[i : i + batch] for k, v in inputs.items()}) for i in range(0, n, batch)])


def _metric(run: Runner, b: Bundle, ts: TensorSet) -> float:
    return float(b.task.evaluate(_outputs(run, ts.inputs), ts.target, b.encoder)[b.task.metric])


def _row(v: Variant, b: Bundle, s: Splits, calls: int) -> dict[str, Any]:
    speed = measure(v.run, s.test.inputs, calls=calls, seconds=calls / 100)
    return {
        "variant": v.name,
        "runtime": v.runtime,
        "metric": b.task.metric,
        "value": _metric(v.run, b, s.test),
        "size_bytes": v.size,
        "parameters": v.parameters,
        "p50_ms": speed.p50_ms,
        "p95_ms": speed.p95_ms,
        "throughput": speed.throughput,
        "batch": speed.batch,
        "threads": torch.get_num_threads(),
        "folder": v.folder,
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['metric']} {r['value']:.4f}, {r['size_bytes'] / 1e6:.2f} MB, p50 {r['p50_ms']:.2f} ms, "
        f"p95 {r['p95_ms']:.2f} ms, {r['throughput']:,.0f}/s at batch {r['batch']}"
    )


def _finish(
    v: Variant, b: Bundle, spec: Spec, root: Path, s: Splits, folder: Path, o: Options, result: Compressed
) -> None:
    """Run the spec's model tests on the written variant (ONNX backend); keep it if they pass (or `force`),
    with its metrics.json, tests.xml and compress.json."""
    variant = Bundle(folder, backend="onnx")
    tested = variant.spec.model_copy(update={"tests": spec.tests})
    outcomes = run_tests(Subject(variant.model, variant.encoder, tested, s.tested, root, variant.run))
    result.outcomes[v.folder or v.name] = outcomes
    passed = all(o.passed for o in outcomes)
    row = next(r for r in result.rows if r["variant"] == v.name)
    row["tests"] = f"{sum(o.passed for o in outcomes)}/{len(outcomes)}" if outcomes else "none"
    if not passed and not o.force:
        shutil.rmtree(folder)
        row["folder"] = None
        result.refused.append(v.folder or v.name)
        log.warning(f"{v.name}: failed its model tests; not written (--force writes it)")
        return
    metrics = b.task.evaluate(_outputs(variant.run, s.test.inputs), s.test.target, b.encoder)
    (folder / "metrics.json").write_text(json.dumps({"task": b.task.name, "test": metrics}, indent=2, default=str))
    if outcomes:
        (folder / "tests.xml").write_text(junit_xml(outcomes, f"{spec.name}-{v.folder}"))
    if not passed:
        result.forced.append(v.folder or v.name)
        log.warning(f"{v.name}: failed its model tests; written anyway (--force)")
    record = {"source": str(b.path), "variant": v.folder, **v.record, "row": row}
    record |= {"tests": [o.to_json() for o in outcomes], "passed": passed, "forced": not passed}
    (folder / "compress.json").write_text(json.dumps(record, indent=2, default=str))
    result.written.append(v.folder or v.name)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown (compress.md, docs/benchmarks.md)."""
    head = "| variant | metric | size | parameters | p50 ms (batch 1) | p95 ms | examples/s (batch 64) | tests |"
    lines = [head, "|" + " --- |" * 8]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['metric']} {r['value']:.4f} | {r['size_bytes'] / 1e6:.3f} MB | "
            f"{r['parameters']:,} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['throughput']:,.0f} | "
            f"{r.get('tests', '')} |"
        )
    return "\n".join(lines)
