"""int8 ONNX graphs with ONNX Runtime's quantiser, as its documentation advises: static quantisation (weights
and activations, scales calibrated on training examples, QDQ format) for conv nets; dynamic quantisation (int8
weights of MatMul/Gemm/Attention and of embedding tables (Gather), activations scaled on the fly) for
transformers, RNNs and the other models. The graph decides: one with a Conv node is a conv net. The graph is
pre-processed first (shape inference and ORT's basic optimisations: BN folded into convs), as
`quant_pre_process` recommends.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from sw2 import log

STATIC, DYNAMIC = "static", "dynamic"
DYNAMIC_OPS = ["MatMul", "Gemm", "Attention", "Gather"]  # Gather: embedding tables, most of a text model's bytes


class Calibration(CalibrationDataReader):
    """Batches of input tensors for the calibrator, as numpy arrays by input name."""

    def __init__(self, inputs: dict[str, torch.Tensor], names: list[str], batch_size: int = 32) -> None:
        n = len(next(iter(inputs.values())))
        self.batches: Iterator[dict[str, np.ndarray]] = iter(
            [{k: inputs[k][i : i + batch_size].numpy() for k in names} for i in range(0, n, batch_size)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def method_for(graph: Path) -> str:
    """static for a conv net (a graph with Conv nodes), dynamic otherwise."""
    model = onnx.load(str(graph), load_external_data=False)
    return STATIC if any(n.op_type == "Conv" for n in model.graph.node) else DYNAMIC


def _pre_processed(graph: Path, out: Path) -> Path:
    """`graph` pre-processed for quantisation into `out`: shape inference and ORT's basic optimisations;
    without symbolic shape inference where that fails (some exported attention graphs), else `graph` as it is.
    It runs in `out`'s folder: ONNX Runtime's shape inference writes scratch files into the working folder."""
    graph, out, here = graph.resolve(), out.resolve(), os.getcwd()
    os.chdir(out.parent)
    try:
        for skip_symbolic in (False, True):
            try:
                quant_pre_process(str(graph), str(out), skip_symbolic_shape=skip_symbolic)
                return out
            except Exception as err:  # the pre-processing is an optimisation: quantise without it
                what = " (symbolic shapes)" * (not skip_symbolic)
                log.info(f"sw2: quantisation pre-processing{what} failed: {err!r}")
        return graph
    finally:
        os.chdir(here)


def quantize(
    graph: Path, out: Path, method: str, per_channel: bool, calibration: dict[str, torch.Tensor] | None = None
) -> None:
    """The int8 version of the ONNX `graph`, written to `out`; `calibration` (training examples' input
    tensors) sets the activations' scales of static quantisation."""
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # the quantiser warns through the root logger
        try:
            pre = _pre_processed(graph, pre)
            if method == STATIC:
                assert calibration is not None, "static quantisation needs calibration inputs"
                names = [i.name for i in onnx.load(str(pre), load_external_data=False).graph.input]
                quantize_static(
                    str(pre),
                    str(out),
                    Calibration(calibration, names),
                    quant_format=QuantFormat.QDQ,
                    per_channel=per_channel,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                )
            else:
                quantize_dynamic(
                    str(pre), str(out), op_types_to_quantize=DYNAMIC_OPS, per_channel=per_channel,
                    weight_type=QuantType.QInt8,
                )  # fmt: skip
        finally:
            logging.getLogger().setLevel(quiet)
