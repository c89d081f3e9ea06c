"""Data layer: sources -> cleaning -> splits -> encoders fitted on train -> tensors."""

from sw2.data.dataset import Prepared, TensorSet, prepare
from sw2.data.encode import Encoder
from sw2.data.examples import Examples

__all__ = ["Encoder", "Examples", "Prepared", "TensorSet", "prepare"]
