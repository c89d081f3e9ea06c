"""Evaluation: metrics beside a dumb baseline, and plots."""

from sw2.evaluation.metrics import evaluate

__all__ = ["evaluate"]
