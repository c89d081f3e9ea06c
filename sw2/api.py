"""The Python API: `train(spec) -> Bundle`, `load(path) -> Bundle`, `evaluate(bundle, data) -> metrics`,
`verify(bundle) -> model-test outcomes`.

The CLI is a thin shell over these functions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from sw2 import log
from sw2.bundle import Bundle, write_atomic
from sw2.data import prepare
from sw2.data.corpus import prepare_corpus
from sw2.data.dataset import drop_unseen, encode
from sw2.data.sources import load_other
from sw2.engine import predict
from sw2.errors import UserError
from sw2.evaluation import evaluate as score
from sw2.evaluation import plots
from sw2.evaluation.model_tests import Outcome, Subject, junit_xml, run_tests, validate
from sw2.files import within
from sw2.language import evaluate_text, train_language_model
from sw2.models import initialised
from sw2.outputs import DOCTOR_FILES, DOCTOR_WRITES, bundle_out, doctor_out, guard_out
from sw2.preflight import Verdict, preflight, resolve_lr, run_preflight
from sw2.preflight.label_errors import LabelIssues, captions, label_issues
from sw2.preflight.recipe import beats_baseline
from sw2.preflight.seen import what_the_net_sees
from sw2.run_report import write_report
from sw2.runs import fingerprint, run_key, train_model, training_summary, write_bundle
from sw2.spec import Spec, load_spec, parse_spec
from sw2.tasks import TASKS


def resolve_spec(spec: str | Path | Spec | dict[str, Any], root: str | Path | None = None) -> tuple[Spec, Path]:
    """A Spec and the folder its relative paths start from."""
    if isinstance(spec, str | Path):
        parsed, folder = load_spec(spec)
        return parsed, Path(root) if root else folder
    parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
    return parsed, Path(root) if root else Path.cwd()


@log.speaks
def train(
    spec: str | Path | Spec | dict[str, Any],
    out: str | Path | None = None,
    *,
    resume: bool = False,
    verbose: bool = False,
    root: str | Path | None = None,
    check: bool = True,
    force: bool = False,
) -> Bundle:
    """Train from a spec and write the bundle (default runs/<name>); returns the loaded bundle.

    The pre-flight checks run first (`check=False` skips them); a FAIL stops training unless `force`.
    """
    spec, base = resolve_spec(spec, root)
    out = bundle_out(spec, out)
    guard_out(out, spec, base)  # before any work: --out must not destroy user files
    if spec.task == "generate_text":
        return train_language_model(spec, base, out, resume=resume, verbose=verbose, check=check, force=force)
    t0 = time.perf_counter()
    data = prepare(spec, base)
    prep_seconds = time.perf_counter() - t0
    task = TASKS.get(spec.task)
    key = run_key(spec, data.fingerprint)
    if spec.tests:  # a mistake in the tests must not cost a training run
        validate(spec.tests, data.encoder, data.raw_test, base)
    spec, found = resolve_lr(spec, data, task)
    verdicts, check_seconds = run_preflight(spec, data, task, found, force) if check else ([], 0.0)
    name, kwargs, model = initialised(spec, data.encoder, data.train, task)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"sw2: {data.report['source']}: train {len(data.train)}, val {len(data.val)}, test {len(data.test)}; "
        f"model {name} ({n_params:,} parameters)"
    )
    result = train_model(model, task, data.train, data.val, spec, out, key, resume=resume, verbose=verbose)

    metrics: dict[str, Any] = {"task": spec.task}
    outputs: dict[str, torch.Tensor] = {}
    for split, tensors in (("val", data.val), ("test", data.test)):
        if len(tensors):
            outputs[split] = predict(result.model, tensors.inputs, tta=spec.augment.tta)
            metrics[split] = score(outputs[split], tensors.target, data.encoder)
    metrics["training"] = training_summary(result, prep_seconds)
    metrics["data"] = data.report
    if check:
        scored = metrics.get("test") or metrics.get("val")
        after = [beats_baseline(scored)] if scored else []
        for v in after:
            log.info(v.line())
        metrics["preflight"] = {
            "seconds": round(check_seconds, 3),
            "verdicts": [v.to_json() for v in verdicts + after],
        }
    if found is not None:
        metrics["lr_finder"] = {"lrs": found.lrs, "losses": found.losses, "suggestion": found.suggestion}
    outcomes = run_tests(Subject(result.model, data.encoder, spec, data.raw_test, base)) if spec.tests else []
    if outcomes:
        metrics["tests"] = [o.to_json() for o in outcomes]

    def fill(folder: Path) -> None:
        if "test" in metrics and "confusion" in metrics["test"]:
            plots.confusion(metrics["test"]["confusion"], data.encoder.classes or [], folder / "confusion.png")
        if outcomes:
            (folder / "tests.xml").write_text(junit_xml(outcomes, spec.name))
        if check:
            what_the_net_sees(spec, data, folder)
        if found is not None:
            plots.lr_sweep(found.lrs, found.losses, found.suggestion, folder / "lr_finder.png")
        if outputs:  # last: the report reads the files above
            _report_at_training(Bundle(folder), data, outputs)

    stamp = fingerprint(data.fingerprint, name)
    path = write_bundle(out, result, name, kwargs, data.encoder, spec, metrics, stamp, task.metric, fill)
    log.info(f"sw2: bundle written to {path}")
    return Bundle(path)


def _report_at_training(bundle: Bundle, data: Any, outputs: dict[str, torch.Tensor]) -> None:
    """report.html on the test split (or on val when the spec has none). A failure here must not cost
    the trained model, so it is reported and the bundle is written without the report."""
    try:
        if "test" in outputs:
            write_report(bundle, data.raw_test, outputs["test"], val=data.scored_val, val_outputs=outputs.get("val"))
        else:
            write_report(bundle, data.scored_val, outputs["val"], scored_on="validation split (no test split)")
    except Exception as err:  # any failure: keep the model, say why
        log.warning(f"report.html not written ({type(err).__name__}: {err}); retry with sw2 report BUNDLE --debug")


def check(spec: str | Path | Spec | dict[str, Any], root: str | Path | None = None) -> list[Verdict]:
    """The pre-flight verdicts of a spec, without training."""
    spec, base = resolve_spec(spec, root)
    task = TASKS.get(spec.task)
    if spec.task == "generate_text":
        return preflight(spec, prepare_corpus(spec, base), task)
    data = prepare(spec, base)
    spec, found = resolve_lr(spec, data, task)
    return preflight(spec, data, task, found)


@log.speaks
def doctor(
    spec: str | Path | Spec | dict[str, Any],
    out: str | Path | None = None,
    *,
    folds: int | None = None,
    epochs: float | None = None,
    root: str | Path | None = None,
    verbose: bool = False,
) -> LabelIssues:
    """Rank the train + val examples by how likely their label is wrong; writes the findings to `out`
    (default runs/<name>.doctor): label_errors.csv, doctor.json, label_errors.png (images)."""
    spec, base = resolve_spec(spec, root)
    _supervised(spec, "sw2 doctor")
    out = doctor_out(spec, out)
    guard_out(out, spec, base, DOCTOR_FILES, "sw2 doctor findings", checkpoint=False, writes=DOCTOR_WRITES)
    overrides = {k: v for k, v in (("folds", folds), ("epochs", epochs)) if v is not None}
    raw = spec.model_dump(mode="json")
    spec = parse_spec({**raw, "doctor": {**raw["doctor"], **overrides}}, "sw2 doctor options")
    data, task = prepare(spec, base), TASKS.get(spec.task)
    spec, _ = resolve_lr(spec, data, task)
    found = label_issues(spec, data, task, log.info)
    listed = found.table[found.table["flagged"] | (found.table.index < spec.doctor.show)]  # ranked order

    def fill(folder: Path) -> None:
        listed.to_csv(folder / "label_errors.csv", index=False)
        (folder / "doctor.json").write_text(
            json.dumps({**found.summary, "spec": spec.model_dump(mode="json")}, indent=2)
        )
        if found.examples.images is not None:
            top = found.table.head(spec.doctor.show)
            title = "suspected label errors: given → suggested p(suggested)"
            plots.image_grid(found.examples.images[top["position"]], captions(top), folder / "label_errors.png", title)

    write_atomic(out, fill, marks=DOCTOR_FILES, what="sw2 doctor findings", writes=DOCTOR_WRITES)
    log.info(f"sw2: doctor findings written to {out}")
    return found


def _supervised(spec: Spec, what: str) -> None:
    if spec.task == "generate_text":
        raise UserError(f"{what}: not available for task generate_text yet (classify and regress only)")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path}: data not found; give a text file, a CSV/Parquet file, an image or IDX folder")
    return path


def generate(bundle: Bundle | str | Path, prompt: str = "\n", **options: Any) -> str:
    """Text that a language model bundle writes after `prompt`; `options` as Bundle.generate's (tokens,
    temperature, top_k, seed, cache)."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    return b.generate(prompt, **options)


def load(path: str | Path) -> Bundle:
    return Bundle(path)


def evaluate(bundle: Bundle | str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a bundle on other data (its test split if the source has one, else all of it).

    Without `data`, returns the test metrics saved at training time.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if data is None:
        return b.metrics.get("test") or b.metrics.get("val", {})
    if b.spec.task == "generate_text":
        return evaluate_text(b, _existing(Path(data)))
    examples = load_other(b.spec.data, Path(data), b.spec.target)
    tensors, _, dropped = drop_unseen(encode(b.encoder, examples), examples)
    outputs = predict(b.model, tensors.inputs, tta=b.spec.augment.tta)
    return {**score(outputs, tensors.target, b.encoder), "dropped_unseen_labels": dropped}


def verify(
    bundle: Bundle | str | Path, data: str | Path | None = None, tests_from: str | Path | None = None
) -> list[Outcome]:
    """Check a bundle's model tests on its test split, or on `data`. `tests_from` (a spec file of yours) gives
    the tests, and the data whose test split they run on, instead of the bundle's own spec."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    _supervised(b.spec, "sw2 test")
    spec, root = _trusted_spec(b, tests_from, reads_data=data is None)
    if not spec.tests:
        raise UserError(f"{b.path}: the spec has no tests; add a tests: list to the spec (or give --spec FILE)")
    tested = b.spec.model_copy(update={"tests": spec.tests})
    return run_tests(Subject(b.model, b.encoder, tested, _examples(b, spec, root, data), root))


def report(
    bundle: Bundle | str | Path,
    data: str | Path | None = None,
    out: str | Path | None = None,
    spec_from: str | Path | None = None,
) -> Path:
    """(Re)write a bundle's report.html from its test split, or a report on other `data` to `out`;
    `spec_from` (a spec file of yours) names the data instead of the bundle's own spec."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    _supervised(b.spec, "sw2 report")
    if data is not None:
        path = Path(out) if out else Path(f"{b.spec.name}-report.html")
        return write_report(b, _examples(b, b.spec, b.path, data), scored_on=f"other data ({data})", path=path)
    spec, root = _trusted_spec(b, spec_from, reads_data=True)
    p = prepare(spec, root)
    changed = p.fingerprint != b.fingerprint.get("data_sha256", p.fingerprint)
    note = "The training data changed since this model was trained (its fingerprint differs)." if changed else ""
    path = Path(out) if out else None
    if len(p.test):
        return write_report(b, p.raw_test, val=p.scored_val, note=note, path=path)
    return write_report(b, p.scored_val, scored_on="validation split (no test split)", note=note, path=path)


def _trusted_spec(b: Bundle, spec_file: str | Path | None, reads_data: bool) -> tuple[Spec, Path]:
    """The spec whose files may be read, with the folder its paths start from: the user's own spec file, or
    the bundle's spec if every file it names (its data when `reads_data`, its must-get-right examples) lies
    inside the bundle. A bundle can come from anyone: paths it names elsewhere (../../secrets.csv) are never
    read on its say-so."""
    if spec_file is not None:
        spec, root = load_spec(spec_file)
        if spec.target != b.spec.target or spec.task != b.spec.task:
            raise UserError(
                f"{spec_file}: task {spec.task} / target '{spec.target}' differ from the bundle's "
                f"({b.spec.task} / '{b.spec.target}'); give the spec the bundle was trained from"
            )
        return spec, root
    inside = b.path.resolve()
    for field, name in b.spec.named_paths():
        if not reads_data and field.startswith("data."):
            continue
        if not ((inside / name).exists() and within(inside / name, inside)):
            raise UserError(
                f"{b.path}: its spec's {field} ({name}) does not lie inside the bundle, and a bundle cannot make "
                "sw2 read files outside itself; give your spec file with --spec, or the data with --data"
            )
    return b.spec, inside


def _examples(b: Bundle, spec: Spec, root: Path, data: str | Path | None) -> Any:
    """The test split of `spec`'s data (without `data`), else the examples of `data` whose label the model
    saw (the others cannot be scored)."""
    if data is None:
        return prepare(spec, root).raw_test
    examples = load_other(b.spec.data, Path(data), b.spec.target)
    return drop_unseen(encode(b.encoder, examples), examples)[1]
