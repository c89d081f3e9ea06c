"""The ONNX Runtime backend: the bundle's exported graph (BUNDLE/model.onnx, written by `sw2 export`).

The encoder's tensors go in by name, as they go into the PyTorch module; text inputs are trimmed to the
batch's longest sequence first (eager PyTorch does the same inside the model), or padded to the graph's
length where it was exported with a fixed one. The spec's test-time augmentation is applied around the graph.
ONNX Runtime, even given the graph as bytes, reads the files a graph's tensors name as external data
(relative to the working folder): a graph that names any is refused before a session is made
(sw2.runtime.self_contained), so a bundle's graph cannot read the user's files.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sw2.engine.predict import VIEWS, shortest_first, unsorted, with_tta
from sw2.errors import UserError
from sw2.plugins import BACKENDS
from sw2.runtime import Runner
from sw2.runtime.self_contained import check_graph

SEQUENCE_INPUTS = ("text", "tokens")
DTYPES = {"tensor(uint8)": torch.uint8, "tensor(float)": torch.float32, "tensor(int64)": torch.int64}
CHUNK = 256  # examples per session call (sorted text: batches of like lengths)


def session_runner(graph: bytes, tta: str = "none", threads: int | None = None, source: str = "model.onnx") -> Runner:
    """A Runner over the ONNX graph `graph` (its bytes, read from `source`) on the CPU, with `threads` intra-op
    threads (default: torch's, so both backends get the same share of the machine). A graph that names external
    data is refused first."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("the onnx backend needs ONNX Runtime: pip install 'sw2[onnx]'") from None
    check_graph(graph, source)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # not ONNX, or an operator this ONNX Runtime lacks
        why = str(err).splitlines()[0][:200]
        raise UserError(f"{source}: ONNX Runtime cannot load it ({why}); export the bundle again") from None
    shapes = {i.name: i.shape for i in session.get_inputs()}
    dtypes = {i.name: DTYPES.get(i.type) for i in session.get_inputs()}

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [n for n in shapes if n not in batch]
        if missing:
            raise UserError(f"model.onnx takes '{missing[0]}', which the bundle's encoder does not give; export again")
        feed = {n: _fit(n, _typed(batch[n], dtypes[n]), shapes[n]).numpy() for n in shapes}
        return torch.from_numpy(session.run(None, feed)[0]).float()

    @torch.no_grad()
    def run(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs, order = shortest_first(inputs)  # as eager PyTorch's `predict`
        n = len(next(iter(inputs.values())))
        outs = []
        chunk = max(1, CHUNK // VIEWS[tta if "image" in inputs else "none"])  # TTA views share the call
        for i in range(0, n, chunk):
            batch = {k: v[i : i + chunk].contiguous() for k, v in inputs.items()}
            outs.append(with_tta(forward, batch, tta if "image" in batch else "none"))
        return unsorted(torch.cat(outs), order) if outs else torch.empty(0, 0)

    return run


def _typed(x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`x` as the graph's input type: test-time augmentation pads images as floats of whole pixel values,
    which the graph takes as the uint8 it was exported with."""
    return x if dtype is None or x.dtype == dtype else x.round().to(dtype) if dtype == torch.uint8 else x.to(dtype)


def _fit(name: str, x: torch.Tensor, shape: list[Any]) -> torch.Tensor:
    """Token ids cut to the batch's last non-padding position (the graph's token axis is dynamic), or
    padded / cut to the graph's fixed length."""
    if name not in SEQUENCE_INPUTS or x.ndim != 2:
        return x
    if isinstance(shape[1], int):
        return F.pad(x, (0, shape[1] - x.shape[1])) if x.shape[1] < shape[1] else x[:, : shape[1]]
    if name == "tokens":  # a language model's window: every position is real
        return x
    real = (x != 0).any(0).nonzero()
    return x[:, : int(real.max()) + 1 if len(real) else 1]


@BACKENDS.register("onnx")
def onnx_runner(bundle: Any) -> Runner:
    graph = bundle.path / "model.onnx"
    if not graph.is_file():
        raise UserError(f"{bundle.path}: has no model.onnx; run `sw2 export {bundle.path}` first, or use backend torch")
    return session_runner(graph.read_bytes(), tta=bundle.spec.augment.tta, source=str(graph))
