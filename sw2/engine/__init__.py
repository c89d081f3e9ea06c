"""Engine: the one training loop (loop.py) and what it needs."""

from sw2.engine.loop import FitResult, fit, validate
from sw2.engine.predict import predict

__all__ = ["FitResult", "fit", "predict", "validate"]
