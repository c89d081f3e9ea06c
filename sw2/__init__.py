"""sw2: a YAML spec and a dataset in, a fast-trained, evaluated model bundle out."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The API is imported on first use (PEP 562), so that `sw2 spec` and a bad spec's error do not wait
# for torch to load.
_LAZY = {
    "train": "sw2.api",
    "load": "sw2.api",
    "evaluate": "sw2.api",
    "verify": "sw2.api",
    "check": "sw2.api",
    "doctor": "sw2.api",
    "report": "sw2.api",
    "generate": "sw2.api",
    "play": "sw2.api",
    "attack": "sw2.api",
    "suggest": "sw2.api",
    "compress": "sw2.api",
    "export": "sw2.api",
    "tune": "sw2.tuning",
    "ensemble": "sw2.api",
    "UserError": "sw2.errors",
    "Spec": "sw2.spec",
    "load_spec": "sw2.spec",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sw2' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "Spec",
    "UserError",
    "__version__",
    "check",
    "compress",
    "export",
    "doctor",
    "ensemble",
    "evaluate",
    "generate",
    "load",
    "load_spec",
    "report",
    "train",
    "tune",
    "verify",
]
