"""The server's Prometheus metrics (GET /metrics), through prometheus-client.

    sw2_requests_total{endpoint,status}          sw2_request_seconds{endpoint} (histogram)
    sw2_batch_size (histogram)                   sw2_predictions_total{class}
    sw2_drift_psi{input}                         PSI of the latest served examples against reference.json,
                                                 per numeric column / date column's elapsed days
                                                 (input="COLUMN_days") / image brightness / text length, and
                                                 input="predicted_class" for the predicted classes
    sw2_drift_threshold                          the alert threshold the bundle carries (serve.drift_threshold)
    sw2_drift_window_examples                    how many served examples the PSI is computed over

With several workers, prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by sw2.serve.run)
adds up the counters and histograms of all workers; each drift gauge reports the largest PSI among the live
workers (each computes it over the examples it served).
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from typing import Any

import numpy as np
import torch
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sw2 import log
from sw2.data.examples import Examples
from sw2.evaluation.reference import psi, shares, statistics

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
MIN_EXAMPLES = 50  # fewer served examples give no drift figure: PSI on a handful is noise
UPDATE_EVERY = 100  # served examples between drift updates (and at every scrape): not per request


class Monitor:
    def __init__(self, bundle: Any) -> None:
        self.bundle = bundle
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("sw2_requests", "Requests by endpoint and status", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "sw2_request_seconds", "Request latency", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batches = Histogram("sw2_batch_size", "Examples per network call", buckets=BATCH_BUCKETS, registry=r)
        self.classes = Counter("sw2_predictions", "Predicted examples per class", ["class"], registry=r)
        mode = {"multiprocess_mode": "livemax"}
        self.drift = Gauge("sw2_drift_psi", "PSI of served inputs against training", ["input"], registry=r, **mode)
        threshold = Gauge("sw2_drift_threshold", "PSI alert threshold of this bundle", registry=r, **mode)
        self.window_size = Gauge("sw2_drift_window_examples", "Served examples drift is over", registry=r, **mode)
        self.reference = _reference(bundle) if bundle.task.predicts else None  # drift of the examples it is sent
        ref = self.reference or {}
        threshold.set(ref.get("drift_threshold", bundle.spec.serve.drift_threshold))
        window = int(ref.get("drift_window", bundle.spec.serve.drift_window))
        self.window: dict[str, deque[float]] = {name: deque(maxlen=window) for name in ref.get("statistics", {})}
        self.predicted: deque[int] = deque(maxlen=window)
        self.since_update = 0
        self.lock = threading.Lock()  # outputs are observed in the server's worker threads

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batches.observe(size)

    def observe_outputs(self, examples: Examples, outputs: torch.Tensor) -> None:
        """Count the predicted classes and update the drift gauges with these examples."""
        with self.lock:
            self._observe(examples, outputs)

    def _observe(self, examples: Examples, outputs: torch.Tensor) -> None:
        classes = getattr(self.bundle.encoder, "classes", None)
        if classes is not None and outputs.ndim == 2 and outputs.shape[1] == len(classes):
            picked = outputs.argmax(1).tolist()
            for k, n in zip(*np.unique(picked, return_counts=True)):
                self.classes.labels(str(classes[int(k)])).inc(int(n))
            self.predicted.extend(picked)
        if self.reference is None:
            return
        for name, values in statistics(self.bundle.encoder, examples).items():
            if name in self.window:
                self.window[name].extend(values.tolist())
        self.since_update += len(examples)
        if self.since_update >= UPDATE_EVERY:
            self._update()

    def _update(self) -> None:
        self.since_update = 0
        ref = self.reference or {}
        for name, values in self.window.items():
            if len(values) >= MIN_EXAMPLES:
                stats = ref["statistics"][name]
                self.drift.labels(name).set(psi(stats["shares"], shares(np.asarray(values), stats["edges"])))
        pred = ref.get("predicted_classes")
        if pred and len(self.predicted) >= MIN_EXAMPLES:
            counts = np.bincount(np.asarray(self.predicted), minlength=len(pred["shares"]))
            self.drift.labels("predicted_class").set(psi(pred["shares"], counts / counts.sum()))
        self.window_size.set(max([len(v) for v in self.window.values()] + [len(self.predicted)]))

    def exposition(self) -> tuple[bytes, str]:
        """The /metrics body and its content type: all workers' figures in multiprocess mode."""
        with self.lock:
            if self.reference is not None and self.since_update:
                self._update()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _reference(bundle: Any) -> dict[str, Any] | None:
    file = bundle.path / "reference.json"
    if not file.is_file():
        log.info(f"sw2: {bundle.path} has no reference.json (trained before sw2 wrote one): no drift metrics")
        return None
    try:
        found = json.loads(file.read_text(encoding="utf-8"))
        assert isinstance(found, dict) and isinstance(found.get("statistics"), dict)
        return found
    except (ValueError, AssertionError):
        log.warning(f"{file}: not as sw2 writes it; no drift metrics")
        return None
