"""The Python API: `train(spec) -> Bundle`, `load(path) -> Bundle`, `evaluate(bundle, data) -> metrics`.

The CLI is a thin shell over these functions.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from sw2 import __version__
from sw2.bundle import Bundle, save, write_atomic
from sw2.data import prepare
from sw2.data.dataset import drop_unseen, encode
from sw2.data.sources import load as load_source
from sw2.engine import fit, predict
from sw2.errors import UserError
from sw2.evaluation import evaluate as score
from sw2.evaluation import plots
from sw2.models import build, choose
from sw2.spec import Spec, dump_spec, load_spec, parse_spec
from sw2.tasks import TASKS


def resolve_spec(spec: str | Path | Spec | dict[str, Any], root: str | Path | None = None) -> tuple[Spec, Path]:
    """A Spec and the folder its relative paths start from."""
    if isinstance(spec, str | Path):
        parsed, folder = load_spec(spec)
        return parsed, Path(root) if root else folder
    parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
    return parsed, Path(root) if root else Path.cwd()


def train(
    spec: str | Path | Spec | dict[str, Any],
    out: str | Path | None = None,
    *,
    resume: bool = False,
    verbose: bool = True,
    root: str | Path | None = None,
) -> Bundle:
    """Train from a spec and write the bundle (default runs/<name>); returns the loaded bundle."""
    spec, base = resolve_spec(spec, root)
    out = Path(out) if out else Path("runs") / spec.name
    ckpt_dir = out.with_name(out.name + ".checkpoint")
    t0 = time.perf_counter()
    data = prepare(spec, base)
    prep_seconds = time.perf_counter() - t0
    task = TASKS.get(spec.task)
    name, kwargs = choose(spec.model, data.encoder, len(data.train))
    kwargs["dropout"] = spec.train.dropout
    torch.manual_seed(spec.train.seed)
    model = build(name, kwargs)
    with torch.no_grad():
        model.head.bias.copy_(task.output_bias(data.train.target, data.encoder.n_outputs))
        if hasattr(model, "init_from_data"):  # data-dependent initialisation, from the training split only
            model.init_from_data(data.train.inputs)
    if verbose:
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"sw2: {data.report['source']}: train {len(data.train)}, val {len(data.val)}, test {len(data.test)}; "
            f"model {name} ({n_params:,} parameters)"
        )
    run_key = hashlib.sha256((dump_spec(spec) + data.fingerprint).encode()).hexdigest()
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    result = fit(
        model,
        task,
        data.train,
        data.val,
        spec,
        checkpoint_dir=ckpt_dir,
        resume=resume,
        run_key=run_key,
        log_dir=ckpt_dir / "tensorboard",
        verbose=verbose,
    )

    metrics: dict[str, Any] = {"task": spec.task}
    for split, tensors in (("val", data.val), ("test", data.test)):
        if len(tensors):
            out_t = predict(result.model, tensors.inputs, tta=spec.augment.tta)
            metrics[split] = score(out_t, tensors.target, data.encoder)
    metrics["training"] = {
        "seconds": result.train_seconds,
        "examples_per_second": result.examples_per_second,
        "epochs": len(result.history),
        "stopped": result.stopped,
        "best_epoch": result.best_epoch,
        "prepare_seconds": round(prep_seconds, 3),
        "threads": torch.get_num_threads(),
    }
    metrics["data"] = data.report
    fingerprint = {
        "data_sha256": data.fingerprint,
        "sw2": __version__,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": name,
    }

    def fill(folder: Path) -> None:
        save(folder, result.model, name, kwargs, data.encoder, spec, metrics, result.history, fingerprint)
        plots.curves(result.history, task.metric, folder / "curves.png")
        if "test" in metrics and "confusion" in metrics["test"]:
            plots.confusion(metrics["test"]["confusion"], data.encoder.classes or [], folder / "confusion.png")
        if (ckpt_dir / "tensorboard").exists():
            shutil.copytree(ckpt_dir / "tensorboard", folder / "tensorboard")

    path = write_atomic(out, fill)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    if verbose:
        print(f"sw2: bundle written to {path}")
    return Bundle(path)


def load(path: str | Path) -> Bundle:
    return Bundle(path)


def evaluate(bundle: Bundle | str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a bundle on other data (its test split if the source has one, else all of it).

    Without `data`, returns the test metrics saved at training time.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if data is None:
        return b.metrics.get("test", {})
    path = Path(data)
    if not path.exists():
        raise UserError(f"{path}: evaluation data not found; give a CSV/Parquet file, an image folder or IDX folder")
    dspec = b.spec.data.model_copy(update={"path": str(path.resolve()), "source": "auto", "test_path": None})
    loaded = load_source(dspec, Path.cwd(), b.spec.target)
    examples = loaded.test if loaded.test is not None else loaded.train
    tensors, _, dropped = drop_unseen(encode(b.encoder, examples), examples)
    outputs = predict(b.model, tensors.inputs, tta=b.spec.augment.tta)
    return {**score(outputs, tensors.target, b.encoder), "dropped_unseen_labels": dropped}
