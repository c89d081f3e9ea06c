"""The `sw2` command: a thin shell over sw2.api. Bad input prints one line and exits 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from sw2 import log
from sw2.console import Output
from sw2.errors import UserError
from sw2.files import write_file

if TYPE_CHECKING:
    from sw2.tasks import Task

console = Output()  # rich on a terminal, plain text in a pipe, JSON under --log-format json (sw2/console.py)


def cmd_train(args: argparse.Namespace) -> int:
    from sw2.outputs import bundle_out, guard_out
    from sw2.spec import load_spec

    spec, root = load_spec(args.spec)  # a bad spec or --out fails here, before any data is read
    guard_out(bundle_out(spec, args.out), spec, root)
    seconds = duration(args.time) if args.time is not None else None
    if (args.preset or spec.preset) or seconds is not None:
        if args.resume or args.force or args.cv is not None:
            raise UserError("--preset / --time: not with --resume, --force or --cv; train the spec plainly for those")
        from sw2.presets import train_preset

        bundle = train_preset(
            args.spec, args.preset, args.out, seconds=seconds, verbose=not args.quiet, check=not args.no_check
        )
    else:
        from sw2.api import train

        bundle = train(
            args.spec,
            args.out,
            resume=args.resume,
            verbose=not args.quiet,
            check=not args.no_check,
            force=args.force,
            cv=args.cv,
        )
    scored = "test" if bundle.metrics.get("test") else "val"
    show_metrics(bundle.metrics.get(scored, {}), scored, bundle.spec.metrics or bundle.task.metrics, bundle.task)
    if "cross_validation" in bundle.metrics:
        show_cv(bundle.metrics["cross_validation"])
    return 0


def show_cv(cv: dict[str, Any]) -> None:
    """The cross-validated metrics: mean ± std over the folds."""
    table = Table(title=f"cross-validation: {cv['k']} folds of train + val ({cv['folds_by']}); every fold in cv.json")
    for name in ("metric", "mean", "std"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for metric, s in cv["metrics"].items():
        table.add_row(metric, f"{s['mean']:.4f}", f"{s['std']:.4f}")
    console.print(table)


def output_file(path: str, flag: str, inputs: Sequence[str], bundle: str) -> Path:
    """A file the command will write, checked before any work: a file (not a folder) in a folder that exists,
    neither one of the command's `inputs` nor inside the `bundle` folder."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file path (e.g. {out / 'out'}{out.suffix or '.json'})")
    if not out.resolve().parent.is_dir():
        raise UserError(f"{flag} {path}: the folder {out.parent} does not exist; create it or give another path")
    target = out.resolve()
    if any(target == Path(i).resolve() for i in inputs):
        raise UserError(f"{flag} {path}: is an input of this command; give another file to write")
    if Path(bundle).resolve() in target.parents:
        raise UserError(f"{flag} {path}: is inside the bundle {bundle}; give a file outside it")
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    json_out = output_file(args.json, "--json", [args.data] if args.data else [], args.bundle) if args.json else None
    from sw2.api import evaluate, load

    bundle = load(args.bundle)
    metrics = evaluate(bundle, args.data)
    saved = "test" if bundle.metrics.get("test") else "val"
    title = "evaluation" if args.data else f"{saved} (saved at training)"
    show_metrics(metrics, title, bundle.spec.metrics or bundle.task.metrics, bundle.task)
    if json_out is not None:
        write_file(json_out, json.dumps(metrics, indent=2, default=str))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from sw2 import prediction_table

    output = output_file(args.output, "--output", args.inputs, args.bundle) if args.output else None
    if output is not None:
        prediction_table.file_format(output)  # .csv, .parquet or no suffix: before any work
    keep = [c.strip() for c in args.keep.split(",") if c.strip()] if args.keep else None
    from sw2.api import load, predictions

    bundle = load(args.bundle, backend=args.backend)
    examples = bundle.examples(args.inputs if len(args.inputs) > 1 else args.inputs[0], args.sep, args.encoding)
    table = predictions(bundle, examples, top=args.top, keep=keep)
    if output is not None:
        prediction_table.write(table, output)
    elif examples.frame is not None:
        sys.stdout.write(table.to_csv(index=False))
    else:
        rows = table.to_dict("records")
        for r in rows:
            alts = "  ".join(f"{r[k]} {r['p' + k[3:]]:.3f}" for k in r if k.startswith("top"))
            console.print(f"{r['id']}: [bold]{r['prediction']}[/] {r.get('probability', 0):.3f}  {alts}".rstrip())
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from sw2.api import suggest

    rows = suggest(args.bundle, args.pool, args.n, strategy=args.strategy, out=args.out)
    sheet = Path(args.out).with_suffix(".png")
    console.print(f"{len(rows)} examples to label next ({args.strategy}) in {args.out}"
                  + (f"; contact sheet {sheet}" if sheet.exists() else ""))  # fmt: skip
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    import json

    from sw2.api import attack

    record = attack(args.bundle, args.data, method=args.method, eps=args.eps, steps=args.steps, alpha=args.alpha,
                    seed=args.seed, spec_from=args.spec)  # fmt: skip
    sys.stdout.write(json.dumps(record, indent=2) + "\n")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from sw2.api import play

    if args.gif and Path(args.gif).exists() and not args.force:
        raise UserError(f"--gif {args.gif}: it exists; give a new path, or --force to replace it")
    shown = play(args.bundle, args.episodes, seed=args.seed, gif=args.gif)
    for row in shown["episodes"]:
        console.print(f"episode {row['episode']:3d}  seed {row['seed']}  return {row['return']:10.2f}  "
                    f"length {row['length']}")  # fmt: skip
    console.print(f"mean return {shown['mean_return']:.2f} ± {shown['std_return']:.2f} over {len(shown['episodes'])} "
                "episodes" + (f"; {shown['frames']} frames in {shown['gif']}" if shown["gif"] else ""))  # fmt: skip
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from sw2.api import load
    from sw2.data.images import grid_png, png_file

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UserError(f"--out {out}: it exists; give a new path, or --force to replace it")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist; create it or give another path")
    bundle = load(args.bundle)
    classes = args.cls if args.cls is None or len(args.cls) > 1 else args.cls[0]
    images = bundle.sample(args.n, classes=classes, seed=args.seed).numpy()
    if out.suffix.lower() == ".png":
        write_file(out, grid_png(images))
    else:  # a folder of PNGs, written beside it and renamed whole
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
        try:
            for i, img in enumerate(images):
                (tmp / f"{i:04d}.png").write_bytes(png_file(img))
            if out.exists():
                shutil.rmtree(out) if out.is_dir() and not out.is_symlink() else out.unlink()
            tmp.replace(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    console.print(f"{len(images)} images -> {out}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from sw2.api import load

    bundle = load(args.bundle)
    prompt = args.prompt.replace("\\n", "\n").replace("\\t", "\t") if args.escapes else args.prompt
    t0 = time.perf_counter()
    text = bundle.generate(
        prompt, args.tokens, temperature=args.temperature, top_k=args.top_k, seed=args.seed, cache=not args.no_cache
    )
    seconds = time.perf_counter() - t0
    sys.stdout.write(prompt + text + ("" if text.endswith("\n") else "\n"))
    if args.stats:
        print(f"{args.tokens} tokens in {seconds:.2f} s: {args.tokens / seconds:,.1f} tokens/s", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sw2.api import check

    verdicts = check(args.spec)
    for v in verdicts if console.json else []:
        console.event("preflight", **v.to_json())
    table = Table(title=f"pre-flight: {args.spec}")
    for col in ("check", "verdict", "what was seen / what to do"):
        table.add_column(col)
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "SKIP": "dim"}
    for v in verdicts:
        table.add_row(v.check, f"[{colour[v.status]}]{v.status}[/]", v.message)
    if not console.json:  # JSON: the verdicts' events above
        console.print(table)
    return 1 if any(v.status == "FAIL" for v in verdicts) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from sw2.outputs import DOCTOR_FILES, DOCTOR_WRITES, doctor_out, guard_out
    from sw2.spec import load_spec

    spec, root = load_spec(args.spec)
    what = {"marks": DOCTOR_FILES, "what": "sw2 doctor findings", "writes": DOCTOR_WRITES}
    guard_out(doctor_out(spec, args.out), spec, root, checkpoint=False, **what)
    from sw2.api import doctor

    found = doctor(args.spec, args.out, folds=args.folds, epochs=args.epochs, verbose=True)
    s = found.summary
    table = Table(
        title=f"suspected label errors: {s['flagged']} flagged of {s['examples']} "
        f"(out-of-fold accuracy {s['out_of_fold_accuracy']:.4f})"
    )
    for col in ("rank", "id", "given", "suggested", "p(given)", "p(suggested)"):
        table.add_column(col, justify="right" if col.startswith(("rank", "p(")) else "left")
    for rank, r in enumerate(found.table.head(found.summary["show"]).itertuples(), start=1):
        table.add_row(str(rank), str(r.id), str(r.given), str(r.suggested), f"{r.p_given:.3f}", f"{r.p_suggested:.3f}")
    console.print(table)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    inputs = [a for a in (args.data, args.spec) if a]
    junit_out = output_file(args.junit, "--junit", inputs, args.bundle) if args.junit else None
    from sw2.api import load, verify
    from sw2.evaluation.model_tests import junit_xml

    bundle = load(args.bundle)
    outcomes = verify(bundle, args.data, args.spec)
    table = Table(title=f"model tests: {bundle.spec.name}")
    for col in ("test", "value", "required", "result", "detail"):
        table.add_column(col, justify="right" if col in ("value", "required") else "left")
    for o in outcomes:
        verdict = "[green]PASS[/]" if o.passed else "[red]FAIL[/]"
        table.add_row(o.name, f"{o.value:.4g}", o.bound, verdict, o.detail)
    console.print(table)
    # the bundle's own tests.xml is rewritten only for its own tests on its own test split
    default = "tests.xml" if (args.data or args.spec) else bundle.path / "tests.xml"
    junit = junit_out or Path(default)
    write_file(junit, junit_xml(outcomes, bundle.spec.name))
    failed = sum(not o.passed for o in outcomes)
    console.print(f"{len(outcomes) - failed} passed, {failed} failed; JUnit XML: {junit}")
    return 1 if failed else 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from sw2.api import ensemble

    bundle = ensemble(args.bundles, args.out, spec_from=args.spec)
    scored = "test" if bundle.metrics.get("test") else "val"
    show_metrics(bundle.metrics.get(scored, {}), scored, bundle.spec.metrics or bundle.task.metrics, bundle.task)
    members = bundle.metrics["training"]["members"].get(scored, [])
    console.print(
        f"members' {bundle.task.metric} on {scored}: {', '.join(f'{m:.4f}' for m in members if m is not None)}"
    )
    console.print(f"bundle: {bundle.path}")
    return 0


def duration(text: str) -> float:
    """Seconds from "90s", "20m", "1.5h" or a plain number of seconds (--time)."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise UserError(f"--time: '{text}' is not a duration; give e.g. 20m, 90s or 1h") from None
    if not seconds > 0:
        raise UserError(f"--time: {text}; give a positive duration (e.g. 20m, 90s, 1h)")
    return seconds


def cmd_tune(args: argparse.Namespace) -> int:
    from sw2.spec import load_spec

    load_spec(args.spec)  # a bad spec (or search space) fails here, before Optuna and torch load
    seconds = duration(args.time) if args.time is not None else None
    from sw2.tuning import tune

    try:
        done = tune(
            args.spec, args.out, trials=args.trials, seconds=seconds, workers=args.workers, storage=args.storage,
            resume=args.resume, pruner=args.pruner, confirm=args.confirm, verbose=not args.quiet,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: run the same command with --resume to continue the search", file=sys.stderr)
        return 130
    table = Table(title=f"sw2 tune: {args.spec} (the best {min(10, len(done.leaderboard))}; all in leaderboard.md)")
    cols = list(dict.fromkeys(k for r in done.leaderboard for k in r))
    for col in cols:
        table.add_column(col.rsplit(".", 1)[-1])  # lr, widths: the full paths are in leaderboard.md
    for row in done.leaderboard[:10]:
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in (row.get(c, "") for c in cols)))
    console.print(table)
    scored = "test" if done.bundle.metrics.get("test") else "val"
    b = done.bundle
    show_metrics(b.metrics.get(scored, {}), scored, b.spec.metrics or b.task.metrics, b.task)
    console.print(f"best spec: {done.out / 'best.yaml'}; bundle: {done.bundle.path}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from sw2.api import compress

    done = compress(
        args.bundle, args.quantize, args.prune, args.out, force=args.force, spec_from=args.spec,
        fine_tune=args.fine_tune, distill=args.distill, calls=args.calls, verbose=True,
    )  # fmt: skip
    table = Table(title=f"sw2 compress: {args.bundle} (metric on the {done.scored_on})")
    columns = ("variant", "metric", "size MB", "parameters", "p50 ms", "p95 ms", "examples/s @64", "tests", "written")
    for col in columns:
        table.add_column(col, justify="left" if col in ("variant", "written") else "right")
    for r in done.rows:
        table.add_row(
            r["variant"], f"{r['metric']} {r['value']:.4f}", f"{r['size_bytes'] / 1e6:.3f}", f"{r['parameters']:,}",
            f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['throughput']:,.0f}", r.get("tests", ""),
            str(done.out / r["folder"]) if r["folder"] else "",
        )  # fmt: skip
    console.print(table)
    for name in done.refused:
        failed = [o for o in done.outcomes[name] if not o.passed]
        detail = "; ".join(f"{o.name}: {o.value:.4g}, required {o.bound}" for o in failed)
        console.print(f"[red]{name}: failed its model tests ({detail}); not written (--force writes it)[/]")
    for name in done.forced:
        console.print(f"[yellow]{name}: failed its model tests; written anyway (--force)[/]")
    console.print(f"table: {done.out / 'compress.json'}, {done.out / 'compress.md'}")
    return 1 if done.refused else 0


def cmd_export(args: argparse.Namespace) -> int:
    out = output_file(args.out, "--out", [], args.bundle) if args.out else None
    if out is not None and (out.exists() or out.is_symlink()) and not args.force:
        raise UserError(f"--out {args.out}: already exists; give another path, or add --force to replace it")
    from sw2.api import export

    done = export(args.bundle, args.format, out, spec_from=args.spec, examples=args.examples, verbose=True)
    p = done["parity"]
    agree = f", predicted classes agree on {p['agreement']:.2%}" if "agreement" in p else ""
    size = done["size_bytes"] / 1e6
    console.print(f"exported with the {done['exporter']} exporter (opset {done['opset']}, {size:.2f} MB)")
    console.print(
        f"parity on {p['examples']} examples ({p['splits']}): max abs difference {p['max_abs_diff']:.2e} "
        f"(tolerance {p['tolerance']:.1e}){agree}"
    )
    console.print(f"graph: {Path(args.bundle) / 'model.onnx'}{f' and {out}' if out else ''}; record: "
                  f"{Path(args.bundle) / 'export.json'}")  # fmt: skip
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from sw2 import log
    from sw2.serve.run import serve
    from sw2.serve.settings import Settings

    with log.to_console(True):
        serve(Settings(
            args.bundle, args.host, args.port, args.workers, args.backend, args.max_batch, args.max_wait_ms,
            args.max_body_mb, args.max_rows, not args.no_auth, args.key_file, args.log_requests,
            timeout_s=args.timeout_s, max_concurrency=args.max_concurrency, max_queue=args.max_queue,
            max_inflight_mb=args.max_inflight_mb, max_prompt_chars=args.max_prompt_chars, max_samples=args.max_samples,
            log_max_mb=args.log_max_mb,
        ))  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.out:
        output_file(args.out, "--out", [a for a in (args.data, args.spec) if a], args.bundle)
    from sw2.api import report

    console.print(f"report written to {report(args.bundle, args.data, args.out, args.spec)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from sw2.api import init

    out = init(args.data, args.target, args.out, force=args.force)
    console.print(f"starter spec written to {out}; read its comments, then: sw2 check {out} and sw2 train {out}")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    """One answer: as text (written as it is: no rich markup read into a schema or a column's name), or under
    --log-format json as one JSON object ("schema", "reference", "columns", "spec")."""
    from sw2.spec import dump_spec, json_schema, load_spec

    if args.schema:
        schema = json_schema()
        kind, fields, text = "schema", {"schema": schema}, json.dumps(schema, indent=2) + "\n"
    elif args.reference:
        from sw2.spec_reference import render

        markdown = render()
        kind, fields, text = "reference", {"markdown": markdown}, markdown
    elif args.columns:
        from sw2.api import columns
        from sw2.data.columns import kinds_table

        task, kinds = columns(args.columns, args.target)
        kind, fields = "columns", {"data": str(args.columns), "task": task, "columns": [k.to_json() for k in kinds]}
        said = f"task: {task}" if task else "task: give --target COLUMN to see the task sw2 infers"
        text = "\n".join([said, "columns:", *kinds_table(kinds)]) + "\n"
    elif args.spec:
        text = dump_spec(load_spec(args.spec)[0])
        kind, fields = "spec", {"spec": str(args.spec), "yaml": text}
    else:
        raise UserError("sw2 spec: give a spec file to resolve, or --schema, or --reference, or --columns DATA")
    if console.json:
        console.event(kind, **fields)
    else:
        sys.stdout.write(text)
    return 0


def show_metrics(m: dict[str, Any], title: str, names: Sequence[str], task: Task) -> None:
    """The metrics `names` (the spec's choice, else all the task reports) beside the baseline's, titled with
    what `task` scored; per class and the confusion matrix where the task gives them."""
    if not m:
        return
    if console.json:
        console.event("metrics", scored=title, size=task.sample_size(m), metrics=m)
        return
    table = Table(title=f"{title} ({task.sample_size(m)})")
    table.add_column("metric")
    table.add_column("model", justify="right")
    base = m.get("baseline")
    if base:
        table.add_column(f"baseline ({base['name']})", justify="right")
    for key in names:
        if key in m:
            table.add_row(key, f"{m[key]:.4f}", *([f"{base[key]:.4f}" if key in base else ""] if base else []))
    console.print(table)
    if "per_class" in m and len(m["per_class"]) <= 30:
        pc = Table(title="per class")
        for col in ("class", "precision", "recall", "f1", "support"):
            pc.add_column(col, justify="right")
        for r in m["per_class"]:
            pc.add_row(
                str(r["class"]), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])
            )
        console.print(pc)
        console.print("confusion matrix (rows: true, columns: predicted)")
        cm = Table()
        cm.add_column("")
        for c in m["classes"]:
            cm.add_column(str(c), justify="right")
        for c, row in zip(m["classes"], m["confusion"]):
            cm.add_row(str(c), *map(str, row))
        console.print(cm)


def version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sw2")
    except PackageNotFoundError:
        from sw2 import __version__

        return __version__


def parser() -> argparse.ArgumentParser:
    """The command line: one declaration per command and option, read top to bottom as `sw2 --help` prints
    them (long for that reason only: no logic)."""
    p = argparse.ArgumentParser(prog="sw2", description="Software 2.0: spec + data -> trained model bundle")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}", help="print sw2's version")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    formats = "text (default; plain lines when piped) or json: one JSON object per event on stdout"
    p.add_argument("--log-format", choices=log.FORMATS, default="text", help=formats)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="sw2 COMMAND --help: its options")

    i = sub.add_parser("init", help="write a starter spec for your data, each choice explained in a comment")
    i.add_argument("data", help="a CSV, TSV, JSON Lines or Parquet file of rows, or an image or IDX folder")
    i.add_argument("--target", help="the column to predict (a table; default: its 'label' column)")
    i.add_argument("--out", default="spec.yaml", help="the spec file to write (default spec.yaml)")
    i.add_argument("--force", action="store_true", help="replace --out if it exists")
    i.set_defaults(func=cmd_init)

    t = sub.add_parser("train", help="train from a YAML spec and write a bundle")
    t.add_argument("spec", help="the YAML spec file (sw2 init DATA --target COL writes a starter)")
    t.add_argument("--out", help="bundle folder (default runs/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--no-check", action="store_true", help="skip the pre-flight checks")
    t.add_argument("--force", action="store_true", help="train even if a pre-flight check FAILs")
    t.add_argument("--preset", choices=["fast", "balanced", "best"], help="trade time for quality (see docs/tune.md)")
    t.add_argument("--time", help="wall budget of the whole preset, e.g. 10m (fast: the training's time budget)")
    t.add_argument(
        "--cv", type=int, metavar="K",
        help="also cross-validate on K folds of train + val (stratified; by group or time order as data.split "
        "says), K more trainings: each metric's mean ± std printed and saved (metrics.json, BUNDLE/cv.json)",
    )  # fmt: skip
    t.set_defaults(func=cmd_train)

    tu = sub.add_parser("tune", help="search a spec's hyper-parameters (Optuna) and train the best into a bundle")
    tu.add_argument("spec", help="the YAML spec file, with a tune: section naming the fields to search")
    tu.add_argument("--trials", type=int, help=f"finished trials to reach (default {20} without --time)")
    tu.add_argument("--time", help="wall budget of the search, e.g. 20m, 90s, 1h (the best's training follows)")
    tu.add_argument("--workers", type=int, default=1, help="processes searching side by side")
    tu.add_argument("--storage", help="database URL shared by workers (postgresql://...); default OUT/study.journal")
    tu.add_argument("--out", help="output folder (default runs/<name>-tune)")
    tu.add_argument("--resume", action="store_true", help="continue an interrupted search")
    tu.add_argument("--pruner", default="median", help="median (default), hyperband or none")
    tu.add_argument(
        "--confirm", type=int, default=3,
        help="the best N trials by val, and the spec's own, cross-validated on train + val; the best mean is "
        "trained (0: the best by val; a quarter of --time is kept for it)",
    )  # fmt: skip
    tu.add_argument("--quiet", action="store_true", help="no progress output")
    tu.set_defaults(func=cmd_tune)

    en = sub.add_parser("ensemble", help="one bundle averaging several of one task and preprocessing")
    en.add_argument("bundles", nargs="+", help="two or more bundle folders of one task, data and preprocessing")
    en.add_argument("--out", help="bundle folder (default runs/<first's name>-ensemble)")
    en.add_argument("--spec", help="the spec the members were trained from, where theirs names data outside them")
    en.set_defaults(func=cmd_ensemble)

    e = sub.add_parser("eval", help="metrics of a bundle, on new data if given")
    e.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    e.add_argument("--data", help="CSV/Parquet file, image folder or IDX folder")
    e.add_argument("--json", help="also write the metrics to this JSON file")
    e.set_defaults(func=cmd_eval)

    pr = sub.add_parser("predict", help="predictions for images, a folder, or a CSV of rows")
    pr.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    pr.add_argument("inputs", nargs="+", help="a CSV or Parquet file of rows, or image files and folders")
    pr.add_argument("--top", type=int, default=3, help="classes to show per example")
    pr.add_argument("--output", help="write the rows to this file: .csv (or no suffix) or .parquet")
    pr.add_argument(
        "--keep", metavar="COL[,COL2]",
        help="input columns passed through to the output rows, first (e.g. an id column); each row's id is its "
        "row number as a spreadsheet shows it (header = 1), as in sw2 doctor's label_errors.csv",
    )  # fmt: skip
    pr.add_argument("--backend", default="torch", help="runtime: torch (eager PyTorch) or onnx (needs sw2 export)")
    pr.add_argument(
        "--sep", help="the delimiter of the CSV, e.g. ';' or tab (default: the training spec's data.sep where the "
        "file's first line holds it, else sniffed)",
    )  # fmt: skip
    pr.add_argument(
        "--encoding", help="the text encoding of the CSV, e.g. utf-8, gb18030 (default: the training spec's "
        "data.encoding where the file is written so, else sniffed)",
    )  # fmt: skip
    pr.set_defaults(func=cmd_predict)

    g = sub.add_parser("generate", help="text that a language model (task: generate_text) writes after a prompt")
    g.add_argument("bundle", help="a language model's bundle folder (task: generate_text)")
    g.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    g.add_argument("--tokens", type=int, default=200, help="how many tokens to write")
    g.add_argument("--temperature", type=float, default=1.0, help="0 = always the most likely token")
    g.add_argument("--top-k", type=int, help="sample only among the k most likely tokens")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-cache", action="store_true", help="recompute the whole context for every token")
    g.add_argument("--escapes", action="store_true", help="read \\n and \\t in the prompt as newline and tab")
    g.add_argument("--stats", action="store_true", help="print tokens/second to stderr")
    g.set_defaults(func=cmd_generate)

    sm = sub.add_parser("sample", help="images that an image generator (task: generate_image) makes")
    sm.add_argument("bundle", help="an image generator's bundle folder (task: generate_image)")
    sm.add_argument("--n", type=int, default=64, help="how many images (1 to 1024)")
    sm.add_argument("--class", dest="cls", nargs="+", help="a class-conditional model: the class (name or index), "
                    "or one per image")  # fmt: skip
    sm.add_argument("--seed", type=int, default=0, help="the same seed, the same images")
    sm.add_argument("--out", default="samples.png", help="a .png file (one grid), or a folder (one PNG each)")
    sm.add_argument("--force", action="store_true", help="replace --out if it exists")
    sm.set_defaults(func=cmd_sample)

    sg = sub.add_parser("suggest", help="active learning: the unlabeled examples a classifier should get labels for")
    sg.add_argument("bundle", help="a classifier's bundle folder")
    sg.add_argument("--pool", required=True, help="the unlabeled examples: a CSV/Parquet of rows, or images / a folder")
    sg.add_argument("--n", type=int, default=100, help="how many to suggest (default 100)")
    sg.add_argument("--strategy", default="margin", help="margin (default) or entropy, each with a diversity step; "
                    "coreset: diversity alone")  # fmt: skip
    sg.add_argument("--out", default="suggest.csv", help="the CSV of suggestions (images: a contact sheet beside it)")
    sg.set_defaults(func=cmd_suggest)

    at = sub.add_parser("attack", help="a model's metrics under an adversarial attack beside its clean ones (JSON)")
    at.add_argument("bundle", help="a bundle of task classify or regress")
    at.add_argument("--method", default="pgd", help="fgsm or pgd (default)")
    at.add_argument("--eps", type=float, default=0.1, help="L-infinity radius; images: pixels in [0, 1]; tables: "
                    "standardised units")  # fmt: skip
    at.add_argument("--steps", type=int, default=20, help="pgd's steps (default 20)")
    at.add_argument("--alpha", type=float, help="step size (default 2.5 eps / steps; fgsm 1.25 eps)")
    at.add_argument("--seed", type=int, default=0, help="the random start's seed")
    at.add_argument("--data", help="attack the examples of this file instead of the test split (not recorded)")
    at.add_argument("--spec", help="a spec file of yours naming the data, instead of the bundle's own")
    at.set_defaults(func=cmd_attack)

    pl = sub.add_parser("play", help="a policy (task: control) acting in its environment, optionally as a GIF")
    pl.add_argument("bundle", help="a policy's bundle folder (task: control)")
    pl.add_argument("--episodes", type=int, default=5, help="deterministic episodes to play (1 to 1000)")
    pl.add_argument("--seed", type=int, default=0, help="the first episode's seed (then seed + 1, ...)")
    pl.add_argument("--gif", help="write the episodes, rendered, into this .gif file")
    pl.add_argument("--force", action="store_true", help="replace --gif if it exists")
    pl.set_defaults(func=cmd_play)

    c = sub.add_parser("check", help="the pre-flight checks of a spec (exit 1 if any FAILs)")
    c.add_argument("spec", help="the YAML spec file whose data and choices are checked")
    c.set_defaults(func=cmd_check)

    d = sub.add_parser("doctor", help="rank the training examples most likely mislabeled (k-fold + confident learning)")
    d.add_argument("spec", help="the YAML spec file of a classifier: its train + val data are examined")
    d.add_argument("--out", help="findings folder (default runs/<name>.doctor)")
    d.add_argument("--folds", type=int, help="k of the k-fold (default: the spec's doctor.folds)")
    d.add_argument("--epochs", type=float, help="epochs of each fold's model (default: the spec's)")
    d.set_defaults(func=cmd_doctor)

    ts = sub.add_parser("test", help="check the model tests of a bundle (exit 1 if any fails), write JUnit XML")
    ts.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    ts.add_argument("--data", help="test on this data instead of the bundle's test split")
    ts.add_argument(
        "--spec", help="your spec file: its tests, and its data's test split, instead of the bundle's own spec"
    )
    ts.add_argument("--junit", help="JUnit XML file (default BUNDLE/tests.xml; ./tests.xml with --data or --spec)")
    ts.set_defaults(func=cmd_test)

    cp = sub.add_parser("compress", help="int8-quantised and/or pruned variants of a bundle, measured side by side")
    cp.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    cp.add_argument("--quantize", choices=["int8"], help="int8 with ONNX Runtime (static for conv nets, else dynamic)")
    cp.add_argument("--prune", type=float, help="share of each hidden layer's channels to remove (e.g. 0.5)")
    cp.add_argument("--out", help="folder for the variants and the table (default runs/<name>-compressed)")
    cp.add_argument("--force", action="store_true", help="write a variant even if it fails its model tests")
    cp.add_argument("--spec", help="your spec file, naming the data, when the bundle's spec names data outside it")
    cp.add_argument(
        "--fine-tune", type=float, default=0.25, help="share of the recipe's epochs and time a pruned net trains (<= 4)"
    )
    cp.add_argument(
        "--distill",
        type=float,
        default=0.0,
        help="share of the pruned model's fine-tuning loss taken from the unpruned model's outputs (0: labels only)",
    )
    cp.add_argument("--calls", type=int, default=200, help="single-example calls timed per variant")
    cp.set_defaults(func=cmd_compress)

    ex = sub.add_parser("export", help="the network as an ONNX graph (BUNDLE/model.onnx), checked against PyTorch")
    ex.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    ex.add_argument("--format", default="onnx", choices=["onnx"])
    ex.add_argument("--out", help="also write the graph to this file (a new one, unless --force)")
    ex.add_argument("--force", action="store_true", help="replace the file --out names if it exists")
    ex.add_argument("--spec", help="your spec file, naming the data, when the bundle's spec names data outside it")
    ex.add_argument("--examples", type=int, default=256, help="real examples the parity check runs on")
    ex.set_defaults(func=cmd_export)

    sv = sub.add_parser("serve", help="serve a bundle over HTTP: auth, micro-batching, /metrics, a web page")
    sv.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="processes, each with its own copy of the model")
    sv.add_argument("--backend", default="torch", help="torch (eager PyTorch) or onnx (needs sw2 export)")
    sv.add_argument("--max-batch", type=int, default=32, help="examples one network call takes")
    sv.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    sv.add_argument("--max-body-mb", type=float, default=10.0, help="larger request bodies answer 413")
    sv.add_argument("--max-rows", type=int, default=1000, help="examples one request may hold")
    sv.add_argument("--timeout-s", type=float, default=30.0, help="a request not answered by then: 408/504")
    sv.add_argument("--max-concurrency", type=int, default=64, help="requests at once (probes not counted); 503 past")
    sv.add_argument("--max-queue", type=int, default=2048, help="examples waiting for the model; 503 past")
    sv.add_argument("--max-inflight-mb", type=float, default=256.0, help="request bodies held at once; 503 past")
    sv.add_argument("--max-prompt-chars", type=int, default=10_000, help="a generate prompt's characters; 413 past")
    sv.add_argument("--max-samples", type=int, default=64, help="images one /v1/sample request may ask for")
    sv.add_argument("--no-auth", action="store_true", help="serve without an API key (a warning says so)")
    sv.add_argument("--key-file", help="the API key's file (default ~/.config/sw2/api-key; $SW2_API_KEY first)")
    sv.add_argument("--log-requests", help="append requests to this file (0600), values masked but the spec's "
                    "serve.log_columns")  # fmt: skip
    sv.add_argument("--log-max-mb", type=float, default=100.0, help="rotate the request log at this size")
    sv.set_defaults(func=cmd_serve)

    rp = sub.add_parser("report", help="(re)write a bundle's report.html, or a report on other data")
    rp.add_argument("bundle", help="the bundle folder that sw2 train wrote")
    rp.add_argument("--data", help="report on this data instead of the bundle's test split")
    rp.add_argument("--out", help="HTML file (default BUNDLE/report.html; <name>-report.html with --data)")
    rp.add_argument("--spec", help="your spec file: report on its data's test split instead of the bundle's spec")
    rp.set_defaults(func=cmd_report)

    s = sub.add_parser("spec", help="print the resolved spec, or the JSON schema with --schema")
    s.add_argument("spec", nargs="?", help="the YAML spec file to print with every default filled in")
    s.add_argument("--schema", action="store_true")
    s.add_argument("--reference", action="store_true", help="print the spec reference (docs/spec.md) as Markdown")
    s.add_argument(
        "--columns", metavar="DATA",
        help="print how sw2 reads each column of DATA (CSV, TSV, JSON Lines or Parquet): number, category, text, "
        "date, id or ignored, and why; with --target, the task it infers. Nothing is trained",
    )  # fmt: skip
    s.add_argument("--target", help="with --columns: the column to predict")
    s.set_defaults(func=cmd_spec)
    for command in sub.choices.values():  # --log-format also after the command (its default: the one before)
        command.add_argument("--log-format", choices=log.FORMATS, default=argparse.SUPPRESS, help=formats)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with log.formatted(args.log_format):
            return args.func(args)
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
