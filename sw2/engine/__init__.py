"""Engine: the one training loop (loop.py) over a trainable thing (trainable.py: the networks, the step each
batch goes through (step.py), the stream of batches and how a checkpoint is judged), the callbacks that make
up everything optional (callbacks/), and what they need."""

from sw2.engine.callbacks import Callback
from sw2.engine.context import Context
from sw2.engine.loop import fit
from sw2.engine.predict import predict
from sw2.engine.result import FitResult
from sw2.engine.step import SupervisedStep, TrainStep
from sw2.engine.trainable import Stream, Trainable
from sw2.engine.validate import validate

__all__ = [
    "Callback",
    "Context",
    "FitResult",
    "Stream",
    "SupervisedStep",
    "TrainStep",
    "Trainable",
    "fit",
    "predict",
    "validate",
]
