"""Engine: the one training loop (loop.py), the step it delegates each batch to (step.py), the callbacks that
make up everything optional (callbacks/), and what they need."""

from sw2.engine.callbacks import Callback
from sw2.engine.context import Context
from sw2.engine.loop import FitResult, fit, validate
from sw2.engine.predict import predict
from sw2.engine.step import SupervisedStep, TrainStep

__all__ = ["Callback", "Context", "FitResult", "SupervisedStep", "TrainStep", "fit", "predict", "validate"]
