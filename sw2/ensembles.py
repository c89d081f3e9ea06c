"""`sw2 ensemble`: bundles of one task, trained on the same data with the same preprocessing (e.g. one spec
with several seeds, or different models), combined into one bundle whose network averages theirs (the
`ensemble` model). It predicts, evaluates, tests, exports and serves like any bundle; its metrics are its
own, scored on the spec's val and test splits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sw2 import log, provenance
from sw2.bundle import Bundle, save, write_atomic
from sw2.errors import UserError
from sw2.finish import finish, model_tests
from sw2.models.ensemble import Ensemble
from sw2.outputs import check_replaceable
from sw2.runs import fingerprint
from sw2.spec import Spec


def members_of(bundles: list[Bundle]) -> list[dict[str, Any]]:
    """Each member's model name and kwargs, after checking that the bundles can be averaged (UserError)."""
    if len(bundles) < 2:
        raise UserError("sw2 ensemble: give two or more bundles to combine")
    first = bundles[0]
    if first.task.blend is None:
        raise UserError(f"{first.path}: a {first.task.name} model's outputs cannot be averaged; ensembles are for "
                        "classify and regress")  # fmt: skip
    for b in bundles[1:]:
        if b.task.name != first.task.name:
            raise UserError(
                f"{b.path}: a {b.task.name} model; {first.path} does {first.task.name}: give bundles of one task"
            )
        if b.encoder.to_json() != first.encoder.to_json():
            classes = "" if b.encoder.classes == first.encoder.classes else f" (classes {b.encoder.classes})"
            raise UserError(
                f"{b.path}: its preprocessing differs from {first.path}'s{classes}; an ensemble's members read the "
                "same inputs: train them on the same data, split and text settings"
            )
    return [json.loads((b.path / "model.json").read_text()) for b in bundles]


def from_snapshots(
    name: str, kwargs: dict[str, Any], states: list[dict[str, Any]], blend: str
) -> tuple[str, dict[str, Any], Ensemble]:
    """The `ensemble` of one run's snapshots (`train.snapshots`): model `name` with each saved state."""
    members = [{"name": name, "kwargs": kwargs} for _ in states]
    model = Ensemble(members, blend).eval()  # type: ignore[arg-type]
    for member, state in zip(model.members, states):
        member.load_state_dict(state)
    return "ensemble", {"members": members, "average": blend}, model


def combine(bundles: list[Bundle], out: Path, spec: Spec, root: Path, attach: dict[str, Path] | None = None) -> Path:
    """Write the ensemble of `bundles` to `out`, scored on `spec`'s data (read from `root`); `attach` copies
    files into it under the names given (a preset's search)."""
    check_replaceable(out)
    members = members_of(bundles)
    first = bundles[0]
    task = first.task
    model = Ensemble(members, task.blend).eval()
    for member, b in zip(model.members, bundles):
        member.load_state_dict(b.model.state_dict())
    data = task.prepare(spec, root)
    for b in bundles:
        if b.fingerprint.get("data_sha256") != data.fingerprint:
            raise UserError(
                f"{b.path}: was trained on other rows than this spec's training split; give members trained on "
                "the same data and data.split (or the spec they share with --spec)"
            )
    scored = task.score_run(model, data, spec, None)
    metrics: dict[str, Any] = {"task": task.name, **scored.metrics, "data": data.report}
    metrics["training"] = {
        "ensemble_of": [str(b.path) for b in bundles],
        "members": {s: [b.metrics.get(s, {}).get(task.metric) for b in bundles] for s in scored.metrics},
    }
    kwargs = {"members": members, "average": task.blend}
    outcomes = model_tests(model, data, spec, root, metrics)

    def fill(folder: Path) -> None:
        arch = {"name": "ensemble", "kwargs": kwargs}
        save(folder, model, arch, first.encoder, spec, metrics, [], fingerprint(data.fingerprint, "ensemble"))
        finish(folder, task, data, spec, metrics, scored, outcomes, attach)
        provenance.write(folder, spec, root, data.raw_test)  # its own record: `spec` may not be a member's

    path = write_atomic(out, fill)
    shown = {s: round(metrics[s][task.metric], 4) for s in ("val", "test") if s in metrics}
    log.info(f"sw2: ensemble of {len(bundles)} written to {path}: {task.metric} {shown}")
    return path
