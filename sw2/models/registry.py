"""The model registry (its own module so model files can register without import cycles)."""

from typing import Any

from sw2.registry import Registry

MODELS: Registry[Any] = Registry("model")
