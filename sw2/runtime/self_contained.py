"""A bundle's ONNX graph holds all its tensors inside itself: a graph that names external data is refused.

ONNX lets a tensor keep its bytes in another file (`data_location: EXTERNAL`, `external_data: {location:
...}`). ONNX Runtime, given a graph as bytes, reads such a file relative to the working folder (it refuses only
absolute paths and paths leaving that folder), so a graph in someone else's bundle could read a file of the
user's into the network and hand it back as outputs. sw2 never writes external data (sw2.ship.export saves one
file), so any tensor anywhere in the graph that names it (initializers, sparse initializers, Constant nodes'
attributes, If/Loop/Scan bodies, model-local functions, training info) is refused before ONNX Runtime sees
the graph: every message of the parsed ModelProto is walked, whatever field holds it. So is a graph whose
metadata sets ONNX Runtime's session options (`ort_config`, read where $ORT_LOAD_CONFIG_FROM_MODEL is set: its
threads, a profiling file written to the working folder).
"""

from __future__ import annotations

from typing import Any

from sw2.errors import UserError


def check_graph(graph: bytes, source: str = "model.onnx") -> None:
    """Raise a one-line UserError naming `source` if `graph` (an ONNX model's bytes) does not parse, or if a
    tensor in it keeps its data in another file."""
    try:
        import onnx
    except ImportError:
        raise UserError("the onnx backend needs the onnx package: pip install 'sw2[onnx]'") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(graph)
    except Exception as err:  # protobuf's DecodeError (not a graph, nested too deep) or RecursionError
        why = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"{source}: not an ONNX graph ({why}); export the bundle again") from None
    if any(p.key == "ort_config" for p in model.metadata_props):  # read where $ORT_LOAD_CONFIG_FROM_MODEL is set
        raise UserError(
            f"{source}: its metadata sets ONNX Runtime's session options (ort_config: threads, profiling files), "
            f"which a bundle must not choose; export the bundle again with `sw2 export`"
        )
    found = external_tensor(model)
    if found is not None:
        raise UserError(
            f"{source}: {found} keeps its data in another file (ONNX external data), and a bundle's graph must "
            f"hold its weights inside itself; export the bundle again with `sw2 export`"
        )


def external_tensor(model: Any) -> str | None:
    """The first tensor anywhere in `model` (an onnx.ModelProto) whose data lies in another file, described
    ("tensor 'w' (external data at 'weights.bin')"), else None. The walk is iterative: no nesting is too deep."""
    from google.protobuf.message import Message
    from onnx import TensorProto

    stack: list[Any] = [model]
    while stack:
        message = stack.pop()
        if isinstance(message, TensorProto):  # holds no tensor inside itself: nothing further down
            if message.data_location == TensorProto.EXTERNAL or len(message.external_data):
                where = next((e.value for e in message.external_data if e.key == "location"), "")
                return f"tensor {message.name[:80]!r}" + (f" (external data at {where[:120]!r})" if where else "")
            continue
        for field, value in message.ListFields():
            if field.message_type is not None:  # a message, or a repeated field of them (ONNX has no map fields)
                stack.extend([value] if isinstance(value, Message) else value)
    return None
