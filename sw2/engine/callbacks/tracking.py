"""MLflow tracking (`tracking: {mlflow: URI}`), as a callback: one MLflow run per `sw2 train`, holding each
epoch's history row as metrics (step = the epoch), and at the end (`finish`, called by the pipeline once the
bundle is written) the bundle's resolved spec flattened into params, the final val/test metrics and the bundle
folder as an artefact. TensorBoard (the bundle's tensorboard/) is written as always.

MLflow is an optional extra (pip install 'sw2[mlflow]': mlflow-skinny); without it, or where the tracking
store cannot be opened, the run is refused before training (UserError). A store that fails once
training runs costs one warning (and the rest of the tracking), never the training. A run that ends in an
error is marked FAILED when the process exits.
"""

from __future__ import annotations

import atexit
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sw2 import log
from sw2.engine.callbacks.base import Callback
from sw2.engine.context import Context
from sw2.errors import UserError
from sw2.spec import Spec

INSTALL = "pip install 'sw2[mlflow]' (or pip install mlflow-skinny)"
PARAMS_PER_CALL = 100  # MLflow's limit on params in one log_batch


class MLflowTracking(Callback):
    def __init__(self, spec: Spec) -> None:
        """Opens the tracking store and the experiment (`tracking.experiment`, default the spec's name); the run
        itself starts with training."""
        uri = spec.tracking.mlflow
        assert uri is not None
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise UserError(f"tracking.mlflow: MLflow is not installed; {INSTALL}") from None
        self.uri, self.name = uri, spec.name
        experiment = spec.tracking.experiment or spec.name
        try:
            self.client = MlflowClient(uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment = found.experiment_id if found else self.client.create_experiment(experiment)
        except Exception as err:  # the store's own errors (a refused file store, a server that does not answer)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"tracking.mlflow {uri}: cannot open experiment '{experiment}': {first}") from None
        self.run_id: str | None = None
        self.failed = False  # after the store's first failure, nothing more is sent (each try may wait on retries)

    def on_train_begin(self, ctx: Context) -> None:
        self._start()

    def on_epoch_end(self, ctx: Context, row: dict[str, Any]) -> None:
        if not self._start():
            return
        numbers = {k: float(v) for k, v in row.items() if _is_number(v) and k not in ("epoch", "step")}
        self._safely(f"epoch {row['epoch']}", lambda: self._metrics(numbers, int(row["epoch"])))

    def finish(self, spec: Spec, metrics: dict[str, Any], bundle: Path) -> None:
        """After the bundle is written: its spec as params, the final metrics, the bundle as an artefact; the
        run ends FINISHED."""
        if not self._start():  # a model fitted directly (trees) runs no epochs: its run starts here
            return

        def report() -> None:
            params = dict(_flat(spec.model_dump(mode="json")))
            items = list(params.items())
            for i in range(0, len(items), PARAMS_PER_CALL):
                self.client.log_batch(self.run_id, params=[_param(k, v) for k, v in items[i : i + PARAMS_PER_CALL]])
            self._metrics(dict(_final(metrics)), None)
            self.client.set_tag(self.run_id, "sw2.bundle", str(bundle))
            self.client.log_artifacts(self.run_id, str(bundle), "bundle")
            self.client.set_terminated(self.run_id, "FINISHED")
            log.info(f"sw2: MLflow run {self.run_id} logged to {self.uri}")

        self._safely("the final metrics and the bundle", report)
        atexit.unregister(self._abandon)

    def _start(self) -> bool:
        """Whether the run is open (opened now if not yet)."""
        if self.run_id is None:
            self._safely("the run's start", self._open)
        return self.run_id is not None

    def _open(self) -> None:
        self.run_id = self.client.create_run(self.experiment, run_name=self.name).info.run_id
        atexit.register(self._abandon)

    def _metrics(self, values: dict[str, float], step: int | None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step or 0) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def _safely(self, what: str, call: Callable[[], None]) -> None:
        if self.failed:
            return
        try:
            call()
        except Exception as err:  # the tracker's outage must not cost the training
            said = f"{type(err).__name__}: {str(err).strip()[:200]}"
            log.warning(f"tracking.mlflow {self.uri}: could not log {what} ({said}); training goes on without it")
            self.failed = True

    def _abandon(self) -> None:
        """At exit, a run that never finished (training stopped by an error) is marked FAILED."""
        if self.run_id is not None:
            try:
                self.client.set_terminated(self.run_id, "FAILED")
            except Exception:  # the process is ending; nothing more to do
                pass


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _param(key: str, value: Any) -> Any:
    from mlflow.entities import Param

    return Param(key, value if isinstance(value, str) else json.dumps(value))


def _flat(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """("train.lr", 0.01)... for every leaf of a nested dict (lists are leaves)."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _final(metrics: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """test_accuracy, test_baseline_accuracy, val_...: every number of metrics.json's val and test sections."""
    for split in ("val", "test"):
        for key, value in (metrics.get(split) or {}).items():
            if _is_number(value):
                yield f"{split}_{key}", float(value)
            elif key == "baseline" and isinstance(value, dict):
                yield from ((f"{split}_baseline_{k}", float(v)) for k, v in value.items() if _is_number(v))
