"""`sw2 export`: a bundle's network as an ONNX graph, checked against eager PyTorch before it is kept.

The graph maps the encoder's input tensors, by name (`image`: uint8 N x C x H x W; `num`, `cat`: table
columns; `text`, `tokens`: token ids), to the raw outputs. What lives in Python (column encoding,
tokenisation) stays in preprocess.json and sw2's runtime applies it in front of the graph
(sw2.runtime.onnx_runtime); image normalisation is part of every image model, so it is inside the graph.
The batch axis is dynamic, and so is the token axis of text inputs (the runtime trims padding, as eager
PyTorch does).

Exporter: torch.export's (dynamo) first; where it fails, TorchScript tracing; the one used is recorded.
Parity: ONNX Runtime against eager PyTorch on real examples (the spec's test, val, then train split, at
least 256 where the data has them): the largest absolute difference of the outputs and the agreement of the
predicted classes, saved in the bundle's export.json. A difference beyond tolerance, or a class that differs
where eager PyTorch's choice was not a near-tie, is an error: the graph is not written.

    BUNDLE/model.onnx    the graph (weights inside: one file)    BUNDLE/export.json   exporter, parity
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from sw2 import log
from sw2.errors import UserError
from sw2.spec import Spec

SEQUENCE_INPUTS = ("text", "tokens")  # inputs whose second axis is a token position: dynamic in the graph
OPSET = 18
ATOL, RTOL = 1e-4, 1e-4  # float32 graphs differ from eager by kernel order only: ~1e-6 of the outputs' scale
NEAR_TIE = 1e-3  # a differing class is tolerated where eager's top two outputs are this close
PARITY_EXAMPLES = 256


class Positional(nn.Module):
    """A sw2 model (a dict of named inputs) as a module of positional tensors, in `names` order: what the
    exporters trace."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, tensors))).float()


def to_onnx(model: nn.Module, example: dict[str, torch.Tensor], path: Path, notes: list[str] | None = None) -> str:
    """Export `model` (eval mode) to the ONNX file `path`, traced on `example` (>= 2 rows); returns the
    exporter used: "dynamo" where torch.export captures the model and the graph reproduces it on `example`,
    else "torchscript" (why dynamo was not used is appended to `notes`)."""
    names = sorted(example)
    wrapper, args = Positional(model.eval(), names).eval(), tuple(example[n] for n in names)
    try:
        with _quiet():
            _dynamo(wrapper, args, names, path)
        _check_close(path, example, _eager(model, example))
        return "dynamo"
    except Exception as err:  # torch.export cannot capture every model: trace it instead
        why = f"the dynamo exporter failed ({type(err).__name__}: {str(err).splitlines()[0][:240]})"
        log.info(f"sw2: {why}; exporting with TorchScript")
        if notes is not None:
            notes.append(why)
    with _quiet():
        axes = {n: {0: "batch", 1: "tokens"} if n in SEQUENCE_INPUTS else {0: "batch"} for n in names}
        torch.onnx.export(
            wrapper, args, str(path), dynamo=False, input_names=names, output_names=["outputs"],
            dynamic_axes={**axes, "outputs": {0: "batch"}}, opset_version=OPSET,
        )  # fmt: skip
    return "torchscript"


def _dynamo(wrapper: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], path: Path) -> None:
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim.AUTO
    shapes = tuple({0: batch, 1: tokens} if n in SEQUENCE_INPUTS else {0: batch} for n in names)
    program = torch.onnx.export(
        wrapper, args, dynamo=True, input_names=names, output_names=["outputs"],
        dynamic_shapes={"tensors": shapes}, opset_version=OPSET, verbose=False,
    )  # fmt: skip
    assert program is not None
    program.save(str(path), external_data=False)
    _strip(path)


def _strip(path: Path) -> None:
    """Drop the dynamo exporter's per-node debug metadata (the Python stack, module names, this machine's
    paths): a third of a small graph's bytes, nothing a runtime reads, and nothing a shipped file should tell."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporters' progress lines, warnings and log records stay out of the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@torch.no_grad()
def _eager(model: nn.Module, inputs: dict[str, torch.Tensor], batch: int = 256) -> torch.Tensor:
    n = len(next(iter(inputs.values())))
    return torch.cat([model({k: v[i : i + batch] for k, v in inputs.items()}).float() for i in range(0, n, batch)])


def _onnx_outputs(path: Path, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    from sw2.runtime.onnx_runtime import session_runner

    return session_runner(path.read_bytes())(inputs)


def _check_close(path: Path, inputs: dict[str, torch.Tensor], eager: torch.Tensor) -> None:
    diff = float((_onnx_outputs(path, inputs) - eager).abs().max())
    if diff > ATOL + RTOL * float(eager.abs().max()):
        raise ValueError(f"the graph's outputs differ from eager PyTorch's by {diff:.3g}")


def parity(graph: Path, model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """ONNX Runtime against eager PyTorch on `inputs`: max abs difference, the tolerance it is held to, and
    the agreement of the predicted classes (outputs with more than one column)."""
    eager, onnx = _eager(model, inputs), _onnx_outputs(graph, inputs)
    scale = float(eager.abs().max()) if eager.numel() else 0.0
    out: dict[str, Any] = {
        "examples": len(eager),
        "max_abs_diff": float((onnx - eager).abs().max()) if eager.numel() else 0.0,
        "tolerance": ATOL + RTOL * scale,
        "outputs_scale": scale,
    }
    if eager.shape[-1] > 1:
        differ = eager.argmax(-1) != onnx.argmax(-1)
        top2 = eager.topk(2, dim=-1).values
        out["agreement"] = 1.0 - float(differ.float().mean())
        out["differing_not_near_ties"] = int((differ & (top2[..., 0] - top2[..., 1] > NEAR_TIE)).sum())
    return out


def examples_for_parity(
    bundle: Any, spec: Spec, root: Path, n: int = PARITY_EXAMPLES
) -> tuple[dict[str, torch.Tensor], str]:
    """Up to `n` real examples' input tensors, encoded as the bundle encodes them: the test split, then val,
    then train where the task's held-out data holds it; and which splits they came from."""
    task, held = bundle.task, bundle.task.held_out(bundle, spec, root)
    parts = [("test", held.test), ("val", held.val)] + ([("train", held.train)] if held.train is not None else [])
    subject = SimpleNamespace(encoder=bundle.encoder, model=bundle.model)  # what inputs_of reads
    tensors, used = [], []
    for name, part in parts:
        if len(part) and sum(len(next(iter(t.values()))) for t in tensors) < n:
            tensors.append(task.inputs_of(subject, part))
            used.append(name)
    if not tensors:
        raise UserError(f"{bundle.path}: its spec's data has no examples to check the exported graph on")
    inputs = {k: torch.cat([t[k] for t in tensors])[:n] for k in tensors[0]}
    return inputs, "+".join(used)


def export(
    bundle: Any, spec: Spec, root: Path, out: Path | None = None, examples: int = PARITY_EXAMPLES
) -> dict[str, Any]:
    """Export `bundle`'s network to BUNDLE/model.onnx (and a copy at `out`), checked for parity on real
    examples of `spec`'s data (paths from `root`); the record is written to BUNDLE/export.json and returned."""
    bundle.task.check_use(bundle, "export")
    if examples < 2:
        raise UserError(f"--examples: {examples}; give at least 2 examples to check the graph on")
    if out is not None and out.resolve().is_relative_to(bundle.path.resolve()):
        raise UserError(f"--out {out}: lies inside the bundle; the bundle gets model.onnx anyway: give a path outside")
    t0 = time.perf_counter()
    inputs, splits = examples_for_parity(bundle, spec, root, examples)
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "model.onnx"
        notes: list[str] = []
        exporter = to_onnx(bundle.model, {k: v[:2] for k, v in inputs.items()}, graph, notes)
        check = parity(graph, bundle.model, inputs)
        record = {
            "format": "onnx", "exporter": exporter, "notes": notes, "opset": OPSET,
            "inputs": {k: list(v.shape[1:]) for k, v in inputs.items()},
            "parity": {**check, "splits": splits}, "sha256": hashlib.sha256(graph.read_bytes()).hexdigest(),
            "size_bytes": graph.stat().st_size, "seconds": round(time.perf_counter() - t0, 2),
            "torch": torch.__version__, "onnxruntime": _ort_version(),
        }  # fmt: skip
        bad = check["max_abs_diff"] > check["tolerance"] or check.get("differing_not_near_ties", 0) > 0
        if bad:
            raise UserError(
                f"{bundle.path}: the exported graph does not reproduce the model (max abs difference "
                f"{check['max_abs_diff']:.3g} > {check['tolerance']:.3g}, class agreement "
                f"{check.get('agreement', 1):.4f} on {check['examples']} examples, {exporter}); nothing written"
            )
        _replace(graph, bundle.path / "model.onnx")
        if out is not None:
            _replace(graph, out)
        text = json.dumps(record, indent=2)
        (Path(tmp) / "export.json").write_text(text)
        _replace(Path(tmp) / "export.json", bundle.path / "export.json")
    return record


def _replace(src: Path, dst: Path) -> None:
    """Move `src` to `dst` atomically, across file systems too (a temporary sibling, then rename)."""
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
