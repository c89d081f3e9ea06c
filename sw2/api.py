"""The Python API: `train(spec) -> Bundle`, `load(path) -> Bundle`, `evaluate(bundle, data) -> metrics`,
`verify(bundle) -> model-test outcomes`, `compress(bundle) -> variants measured side by side`.

The CLI is a thin shell over these functions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sw2 import log, prediction_table, provenance
from sw2.bundle import Bundle, write_atomic
from sw2.data.columns import ColumnKind, column_kinds, infer_task, with_task
from sw2.data.columns import resolve as resolve_columns
from sw2.data.sources import read_table
from sw2.engine.callbacks import Callback
from sw2.engine.callbacks.tracking import MLflowTracking
from sw2.errors import UserError
from sw2.evaluation import cross_validation, plots
from sw2.evaluation.model_tests import Outcome, Subject, run_tests
from sw2.files import within, write_file
from sw2.finish import finish, model_tests, report_held_out
from sw2.outputs import DOCTOR_FILES, DOCTOR_WRITES, bundle_out, doctor_out, guard_out
from sw2.preflight import Verdict, preflight, resolve_lr, run_preflight
from sw2.preflight.label_errors import LabelIssues, captions, label_issues
from sw2.preflight.recipe import beats_baseline
from sw2.run_report import write_report
from sw2.runs import fingerprint, run_key, training_summary, write_bundle
from sw2.selection import fit_candidates
from sw2.spec import Spec, load_spec, parse_spec
from sw2.tasks import TASKS, Task
from sw2.tasks.base import HeldOut
from sw2.teacher import load_teacher

if TYPE_CHECKING:
    import pandas as pd

    from sw2.ship.compress import Compressed  # imports onnxruntime (the onnx extra): only when called


def resolve_spec(spec: str | Path | Spec | dict[str, Any], root: str | Path | None = None) -> tuple[Spec, Path]:
    """A Spec and the folder its relative paths start from, with what the spec leaves to the data decided (task:
    auto, a table's target: sw2.data.columns.resolve)."""
    if isinstance(spec, str | Path):
        parsed, folder = load_spec(spec)
        base = Path(root) if root else folder
    else:
        parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
        base = Path(root) if root else Path.cwd()
    return resolve_columns(parsed, base), base


def columns(data: str | Path, target: str | None = None) -> tuple[str | None, list[ColumnKind]]:
    """What `sw2 spec --columns` prints: the task inferred from `target` (None without one) and the kind of
    every other column of the table at `data` (CSV, TSV, JSON Lines or Parquet), judged as training would."""
    frame = read_table(Path(data))
    if target is not None and target not in frame.columns:
        raise UserError(f"{data}: no column '{target}'; --target is one of {', '.join(map(str, frame.columns[:20]))}")
    task = infer_task(frame[target]) if target is not None else None
    return (f"{task[0]} ({task[1]})" if task else None), column_kinds(frame, "auto", target or "")


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
    attach: dict[str, Path] | None = None,
    callbacks: list[Callback] | None = None,
    cv: int | None = None,
) -> Bundle:
    """Train from a spec and write the bundle (default runs/<name>); returns the loaded bundle.

    One pipeline for every task: prepare → pre-flight → initialise → fit → score → bundle → report. The
    pre-flight checks run first (`check=False` skips them); a FAIL stops training unless `force`. `attach`
    copies files into the bundle under the names given (what `sw2 tune` adds: the search's leaderboard, plots).
    `callbacks` (sw2.engine.Callback, as Keras' and Lightning's) run in the bundle's training run after the
    spec's own. `cv`: also cross-validate the chosen model on `cv` folds of train + val (folds as the spec's split
    says: sw2.evaluation.cross_validation), after the final model is trained; the mean ± std of each metric go to
    metrics.json ("cross_validation") and every fold's to cv.json in the bundle.
    """
    spec, base = resolve_spec(spec, root)
    out = bundle_out(spec, out)
    guard_out(out, spec, base)  # before any work: --out must not destroy user files
    tracker = MLflowTracking(spec) if spec.tracking.mlflow else None  # no MLflow, or its store refused: said here
    task = TASKS.get(spec.task)
    t0 = time.perf_counter()
    data = task.prepare(spec, base)
    folds = cross_validation.plan(spec, data, task, cv) if cv is not None else None  # refused before training
    options = task.candidates(spec, data)
    if spec.train.distill or spec.train.snapshots:  # a run of the first candidate only
        options = options[:1]
    specs = [spec.for_model(o) for o in options]  # each with its recipe where auto left fields unset
    if specs[0].text != spec.text and getattr(data.encoder, "text_columns", None):  # the model reads text its way
        data = task.prepare(specs[0], base)
    prep_seconds = time.perf_counter() - t0
    key = run_key(specs[0], data.fingerprint)
    if spec.tests:  # a mistake in the tests must not cost a training run
        task.validate_tests(spec.tests, data.encoder, data.raw_test, base)
    teacher = load_teacher(spec, base, data) if spec.train.distill else None
    specs[0], found = resolve_lr(specs[0], data, task)
    verdicts, check_seconds = run_preflight(specs[0], data, task, found, force) if check else ([], 0.0)
    best, tried = fit_candidates(
        specs, data, task, out, key, resume=resume, verbose=verbose, teacher=teacher,
        callbacks=[*(callbacks or []), *([tracker] if tracker else [])],
    )  # fmt: skip
    spec, name, result = best.spec, best.name, best.result
    cv_record = cross_validation.cross_validate(spec, data, task, folds) if folds is not None else None
    scored = task.score_run(result.model, data, spec, result)
    metrics: dict[str, Any] = {"task": spec.task, **scored.metrics}
    metrics["training"] = {**training_summary(result, prep_seconds), **scored.training}
    metrics["data"] = data.report
    if len(tried) > 1:
        metrics["model_selection"] = {"chosen": name, "candidates": [f.row() for f in tried]}
    if check:
        metrics["preflight"] = _preflight_record(task, metrics, verdicts, check_seconds)
    if cv_record is not None:
        metrics["cross_validation"] = {k: cv_record[k] for k in ("k", "folds_by", "metrics")}
    if found is not None:
        metrics["lr_finder"] = {"lrs": found.lrs, "losses": found.losses, "suggestion": found.suggestion}
    outcomes = model_tests(result.model, data, spec, base, metrics)

    def fill(folder: Path) -> None:
        if check:
            task.what_the_net_sees(spec, data, folder)
        if found is not None:
            plots.lr_sweep(found.lrs, found.losses, found.suggestion, folder / "lr_finder.png")
        if cv_record is not None:
            (folder / "cv.json").write_text(json.dumps(cv_record, indent=2))
        finish(folder, task, data, spec, metrics, scored, outcomes, attach)
        provenance.write(folder, spec, base, data.raw_test)  # after save's spec.yaml, preprocess.json: it binds them

    stamp = fingerprint(data.fingerprint, name)
    path = write_bundle(out, result, best.arch, data.encoder, spec, metrics, stamp, task.metric, fill)
    log.info(f"sw2: bundle written to {path}")
    if tracker is not None:
        tracker.finish(spec, metrics, path)
    return Bundle(path)


def _preflight_record(task: Task, metrics: dict[str, Any], verdicts: list[Verdict], seconds: float) -> dict[str, Any]:
    """The pre-flight's verdicts for metrics.json, with the after-training check: beats the dumb baseline."""
    scored = metrics.get("test") or metrics.get("val")
    after = [beats_baseline(task, scored)] if scored else []
    for v in after:
        log.event("preflight", v.line(), **v.to_json())
    return {"seconds": round(seconds, 3), "verdicts": [v.to_json() for v in verdicts + after]}


def check(spec: str | Path | Spec | dict[str, Any], root: str | Path | None = None) -> list[Verdict]:
    """The pre-flight verdicts of a spec, without training."""
    spec, base = resolve_spec(spec, root)
    task = TASKS.get(spec.task)
    data = task.prepare(spec, base)
    if spec.train.distill:
        load_teacher(spec, base, data)  # refused here as it would be by sw2 train
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
    task = TASKS.get(spec.task)
    if not task.discrete:
        raise UserError(f"sw2 doctor looks for label errors in classification data; this spec is task: {spec.task}")
    out = doctor_out(spec, out)
    guard_out(out, spec, base, DOCTOR_FILES, "sw2 doctor findings", checkpoint=False, writes=DOCTOR_WRITES)
    overrides = {k: v for k, v in (("folds", folds), ("epochs", epochs)) if v is not None}
    raw = spec.model_dump(mode="json")
    spec = parse_spec({**raw, "doctor": {**raw["doctor"], **overrides}}, "sw2 doctor options")
    data = task.prepare(spec, base)
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


def generate(bundle: Bundle | str | Path, prompt: str = "\n", **options: Any) -> str:
    """Text that a language model bundle writes after `prompt`; `options` as Bundle.generate's (tokens,
    temperature, top_k, seed, cache)."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    return b.generate(prompt, **options)


def play(
    bundle: Bundle | str | Path, episodes: int = 5, *, seed: int = 0, gif: str | Path | None = None
) -> dict[str, Any]:
    """A policy bundle (task: control) acting for `episodes` deterministic episodes, seeded seed, seed + 1, ...:
    each episode's return and length, their mean and std; with `gif`, the episodes rendered into that file."""
    from sw2.tasks.control_play import MAX_FRAMES, write_gif

    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if not hasattr(b.task, "play"):
        raise UserError(f"{b.path} is a {b.task.name} model; sw2 play needs a policy (task: control)")
    if not 1 <= episodes <= 1000:
        raise UserError(f"--episodes {episodes}: give 1 to 1000")
    if not 0 <= seed < 2**31:
        raise UserError(f"--seed {seed}: give 0 to 2**31 - 1")
    out = Path(gif) if gif is not None else None
    if out is not None and (out.suffix.lower() != ".gif" or not out.parent.is_dir()):
        raise UserError(f"--gif {out}: give a .gif file in an existing folder")
    rows, frames = b.task.play(b, episodes, seed, MAX_FRAMES if out else 0)
    if out is not None:
        write_gif(frames, out)
    returns = np.array([r["return"] for r in rows])
    return {"episodes": rows, "mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "frames": len(frames), "gif": str(out) if out else None}  # fmt: skip


def attack(
    bundle: Bundle | str | Path,
    data: str | Path | None = None,
    *,
    method: str = "pgd",
    eps: float = 0.1,
    steps: int = 20,
    alpha: float | None = None,
    seed: int = 0,
    spec_from: str | Path | None = None,
) -> dict[str, Any]:
    """A bundle's metrics under an adversarial attack (sw2.evaluation.attack) beside its clean ones, on its test
    split (or on `data`); `eps` as train.adversarial reads it (images: pixels in [0, 1]). On the test split the
    record goes into the bundle (attack.json, attack_examples.png), which its report shows."""
    from sw2.evaluation.attack import examples_png, under_attack

    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if b.task.blend is None or b.networks:
        raise UserError(f"{b.path}: sw2 attack takes a model of examples (classify, regress); this is {b.task.name}")
    if method not in ("fgsm", "pgd"):
        raise UserError(f"--method {method}: give fgsm or pgd")
    if not eps > 0 or not 1 <= steps <= 1000 or (alpha is not None and not alpha > 0):
        raise UserError(f"--eps {eps} / --steps {steps} / --alpha {alpha}: eps and alpha above 0, steps 1 to 1000")
    if data is not None:
        examples, where = b.task.examples_from(b, Path(data)), str(data)
    else:
        spec, root = _trusted_spec(b, spec_from, reads_data=True)
        examples, where = _held_out(b, spec, root, spec_from).test, "test split"
    if not len(examples):
        raise UserError(f"{where}: no examples to attack")
    inputs, target = b.encoder.inputs(examples), b.encoder.target(examples.target)
    record, pictures = under_attack(b.model, b.task, b.encoder, inputs, target, method=method, eps=eps,
                                    steps=steps, alpha=alpha, seed=seed)  # fmt: skip
    record["data"] = where
    if data is None:
        png = examples_png(pictures)
        if png is not None:
            write_file(b.path / "attack_examples.png", png)
        write_file(b.path / "attack.json", json.dumps(record, indent=2))
    return record


def suggest(
    bundle: Bundle | str | Path,
    pool: Any,
    n: int = 100,
    *,
    strategy: str = "margin",
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Active learning: the `n` examples of an unlabeled `pool` (a file of rows, image paths or a folder, as
    predict reads them) that a classifier would learn most from, in order (sw2.evaluation.active). With `out`
    (a .csv), the rows are written there, and for images a contact sheet of them beside it (same name, .png)."""
    import pandas as pd
    import torch

    from sw2.data.images import grid_png
    from sw2.evaluation.active import STRATEGIES, outputs_and_features, ranked_rows
    from sw2.evaluation.active import suggest as pick

    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if b.task.blend != "probabilities" or not b.classes:
        raise UserError(f"{b.path}: sw2 suggest ranks a classifier's pool; this bundle does {b.task.name}")
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy}: give one of {', '.join(STRATEGIES)}")
    target = Path(out) if out is not None else None
    if target is not None and (target.suffix.lower() != ".csv" or not target.parent.is_dir()):
        raise UserError(f"--out {target}: give a .csv file in an existing folder")
    examples = b.examples(pool)
    if not 1 <= n <= len(examples):
        raise UserError(f"--n {n}: the pool holds {len(examples)} examples; give 1 to {len(examples)}")
    outputs, features = outputs_and_features(b.model, b.encoder.inputs(examples))
    order, score = pick(outputs, features, n, strategy, lambda o: torch.softmax(o, 1))
    assert examples.ids is not None
    rows = pd.DataFrame(ranked_rows(order, score, torch.softmax(outputs, 1), examples.ids, list(b.classes)))
    if target is not None:
        write_file(target, rows.to_csv(index=False))
        if examples.images is not None:
            write_file(target.with_suffix(".png"), grid_png(examples.images[order][:256], cols=16))
    return rows


def predictions(bundle: Bundle | str | Path, data: Any, *, top: int = 3, keep: list[str] | None = None) -> pd.DataFrame:
    """The rows `sw2 predict` writes for `data` (a CSV/Parquet path, a DataFrame, image paths...): the input
    columns named in `keep` first, then id (a file's row number as a spreadsheet shows it, as sw2 doctor's), the
    prediction and what else the task gives (sw2.prediction_table)."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    return prediction_table.table(b, data, top, keep)


def load(path: str | Path, backend: str = "torch") -> Bundle:
    """The bundle at `path`, its network run by `backend` (torch: eager PyTorch; onnx: its exported graph)."""
    return Bundle(path, backend=backend)


def evaluate(bundle: Bundle | str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a bundle on other data (its test split if the source has one, else all of it).

    Without `data`, returns the test metrics saved at training time.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if data is None:
        return b.metrics.get("test") or b.metrics.get("val", {})
    return b.task.evaluate_file(b, Path(data))


def verify(
    bundle: Bundle | str | Path, data: str | Path | None = None, tests_from: str | Path | None = None
) -> list[Outcome]:
    """Check a bundle's model tests on its test split, or on `data`. `tests_from` (a spec file of yours) gives
    the tests, and the data whose test split they run on, instead of the bundle's own spec."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    no_tests = f"{b.path}: the spec has no tests; add a tests: list to the spec (or give --spec FILE)"
    if tests_from is None and not b.spec.tests:  # said before its data is looked for
        raise UserError(no_tests)
    spec, root = _trusted_spec(b, tests_from, reads_data=data is None)
    if not spec.tests:
        raise UserError(no_tests)
    tested = b.spec.model_copy(update={"tests": spec.tests})
    examples = _held_out(b, spec, root, tests_from).tested if data is None else b.task.examples_from(b, Path(data))
    return run_tests(Subject(b.model, b.encoder, tested, examples, root))


@log.speaks
def export(
    bundle: Bundle | str | Path,
    format: str = "onnx",
    out: str | Path | None = None,
    *,
    spec_from: str | Path | None = None,
    examples: int = 256,
    verbose: bool = False,
) -> dict[str, Any]:
    """Export a bundle's network to BUNDLE/model.onnx (and a copy at `out`) after a parity check against eager
    PyTorch on `examples` real examples of its spec's data (`spec_from`: a spec file of yours naming it);
    returns the record also saved as BUNDLE/export.json (sw2.ship.export)."""
    from sw2.ship.export import export as run

    if format != "onnx":
        raise UserError(f"--format: '{format}' is not supported; use --format onnx")
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    b.task.check_use(b, "export")  # before its spec is read: a bundle that cannot be exported says so first
    spec, root = _trusted_spec(b, spec_from, reads_data=True)
    return run(b, spec, root, Path(out) if out else None, examples)


@log.speaks
def compress(
    bundle: Bundle | str | Path,
    quantize: str | None = "int8",
    prune: float | None = None,
    out: str | Path | None = None,
    *,
    force: bool = False,
    spec_from: str | Path | None = None,
    fine_tune: float = 0.25,
    distill: float = 0.0,
    calls: int = 200,
    verbose: bool = False,
) -> Compressed:
    """int8 and/or pruned variants of a bundle, written as bundles into `out` (default runs/<name>-compressed),
    with one table measuring them beside the original (sw2.ship.compress). `spec_from` (a spec file of yours)
    names the data when the bundle's own spec names data outside it."""
    from sw2.ship.compress import Options, check_out
    from sw2.ship.compress import compress as run

    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    b.task.check_use(b, "compress")
    options = Options(quantize, prune, fine_tune, distill, calls=calls, force=force)
    options.check()
    target = Path(out) if out else Path("runs") / f"{b.spec.name}-compressed"
    check_out(b, target)
    spec, root = _trusted_spec(b, spec_from, reads_data=True)
    return run(b, spec, root, target, options)


@log.speaks
def ensemble(
    bundles: list[Bundle | str | Path], out: str | Path | None = None, *, spec_from: str | Path | None = None
) -> Bundle:
    """One bundle averaging `bundles` (same task, data and preprocessing; sw2.ensembles), scored on the first
    one's spec (or `spec_from`, a spec file of yours, where that names data outside the bundle)."""
    from sw2.ensembles import combine

    members = [b if isinstance(b, Bundle) else Bundle(b) for b in bundles]
    if not members:
        raise UserError("sw2 ensemble: give two or more bundles to combine")
    target = Path(out) if out else Path("runs") / f"{members[0].spec.name}-ensemble"
    spec, root = _trusted_spec(members[0], spec_from, reads_data=True)
    return Bundle(combine(members, target, spec, root))


def report(
    bundle: Bundle | str | Path,
    data: str | Path | None = None,
    out: str | Path | None = None,
    spec_from: str | Path | None = None,
) -> Path:
    """(Re)write a bundle's report.html from its test split, or a report on other `data` to `out`;
    `spec_from` (a spec file of yours) names the data instead of the bundle's own spec."""
    b = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if data is not None:
        path = Path(out) if out else Path(f"{b.spec.name}-report.html")
        other = b.task.examples_from(b, Path(data))
        return write_report(b, other, scored_on=f"other data ({data})", path=path)
    spec, root = _trusted_spec(b, spec_from, reads_data=True)
    held = _held_out(b, spec, root, spec_from)
    changed = held.fingerprint != b.fingerprint.get("data_sha256", held.fingerprint)
    note = "The training data changed since this model was trained (its fingerprint differs)." if changed else ""
    return report_held_out(b, held.test, held.val, note=note, path=Path(out) if out else None)


def init(data: str | Path, target: str | None = None, out: str | Path = "spec.yaml", *, force: bool = False) -> Path:
    """Write a starter spec for `data` (a table, an image or IDX folder) at `out`, each choice explained in it
    (sw2.starter): the inferred task, the columns' kinds, the split, the commands to run next. An existing
    file is replaced only with `force`, and never the data itself."""
    from sw2.starter import starter_spec

    out, data = Path(out), Path(data)
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the spec file to write, e.g. {out / 'spec.yaml'}")
    if not out.resolve().parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist; create it or give another path")
    if out.resolve() == data.resolve() or data.resolve() in out.resolve().parents:
        raise UserError(f"--out {out}: is the data or inside it; give another file to write the spec to")
    if (out.exists() or out.is_symlink()) and not force:
        raise UserError(f"--out {out}: already exists; give another path, or add --force to replace it")
    write_file(out, starter_spec(data, out, target))
    log.info(f"sw2: starter spec written to {out}; next: sw2 check {out}, then sw2 train {out}")
    return out


def _held_out(b: Bundle, spec: Spec, root: Path, spec_file: str | Path | None) -> HeldOut:
    """The held-out splits of the `_trusted_spec`; read back from the bundle's record (no `spec_file`, paths
    outside the bundle), its test split must be the one recorded at training."""
    held = b.task.held_out(b, spec, root)
    if spec_file is None and spec is not b.spec:  # `_trusted_spec` gave the recorded paths
        provenance.check_rows(b.path, b.spec, held.test)
    return held


def _trusted_spec(b: Bundle, spec_file: str | Path | None, reads_data: bool) -> tuple[Spec, Path]:
    """The spec whose files may be read, with the folder its paths start from: the user's own spec file, or
    the bundle's spec if every file it names (its data when `reads_data`, its must-get-right examples) lies
    inside the bundle. A bundle can come from anyone: paths it names elsewhere (../../secrets.csv) are never
    read on its say-so — unless the bundle's record (sw2.provenance) shows that this user's sw2 read them for
    training and they are unchanged: then the bundle's spec, with the recorded absolute paths."""
    if spec_file is not None:
        spec, root = load_spec(spec_file)
        spec = with_task(spec, b.spec.task) if spec.task == "auto" else spec  # the bundle knows its task
        if spec.target != b.spec.target or spec.task != b.spec.task:
            raise UserError(
                f"{spec_file}: task {spec.task} / target '{spec.target}' differ from the bundle's "
                f"({b.spec.task} / '{b.spec.target}'); give the spec the bundle was trained from"
            )
        return spec, root
    inside = b.path.resolve()
    outside = [
        (field, name)
        for field, name in b.spec.named_paths()
        if not ((not reads_data and field.startswith("data.")) or field.startswith("train."))  # train.: training only
        and not ((inside / name).exists() and within(inside / name, inside))
    ]
    if not outside:
        return b.spec, inside
    return provenance.with_paths(b.spec, provenance.recorded_paths(b.path, b.spec, outside)), inside
