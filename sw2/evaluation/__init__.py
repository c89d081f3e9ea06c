"""Evaluation: metrics, model tests, plots and saliency; each task (sw2.tasks) picks what it reports."""
