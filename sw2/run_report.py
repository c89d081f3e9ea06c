"""The run report: `report.html` in every bundle, one self-contained page (images inlined as PNG data,
no scripts, no network) that a reviewer reads top to bottom:

summary · metrics beside the baseline · curves · the task's own sections (classify: confusion matrix,
worst mistakes, suspected label errors, reliability diagram, saliency; regress: largest errors, predicted
against true, saliency; generate_text: samples and per-token loss) · model tests · pre-flight verdicts and
what the net sees · data summary · the resolved spec.

This module assembles the page and holds the sections every task shares, with the helpers the tasks'
sections use (`e`, `image`, `table`, `gallery`, `saliency_section`).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sw2.bundle import Bundle
from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.evaluation import plots
from sw2.evaluation.saliency import column_saliency, image_saliency
from sw2.files import write_file

GALLERY = 24  # images (or rows) in each gallery

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td.num{text-align:right}img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}
.PASS{color:#17803d;font-weight:bold}.WARN{color:#b7791f;font-weight:bold}.FAIL{color:#c53030;font-weight:bold}.SKIP{color:#718096}
.muted{color:#666}nav a{margin-right:.8em}
"""


def e(x: Any) -> str:
    return html.escape(str(x))


def image(draw: Callable[[io.BytesIO], None], alt: str) -> str:
    buf = io.BytesIO()
    draw(buf)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="{e(alt)}">'


def file_image(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    return image(lambda buf: buf.write(path.read_bytes()), alt)


def _epochs(training: dict[str, Any]) -> str:
    """Epochs trained (steps / full-data steps per epoch), fractional where a time budget stopped mid-epoch
    (older bundles: epochs begun)."""
    done = training.get("epochs_done", training.get("epochs"))
    return f"{done:g}" if isinstance(done, (int, float)) else "?"


def table(rows: list[dict[str, Any]], css: dict[str, str] | None = None) -> str:
    """An HTML table of dict rows; numbers right-aligned, a column named in `css` styles its cells by value."""
    if not rows:
        return '<p class="muted">none</p>'
    cols = list(rows[0])
    head = "".join(f"<th>{e(c)}</th>" for c in cols)

    def cell(c: str, v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:.4g}</td>'
        if isinstance(v, int | np.integer):
            return f'<td class="num">{v}</td>'
        klass = f' class="{e(v)}"' if css and c in css else ""
        return f"<td{klass}>{e(v)}</td>"

    body = "".join("<tr>" + "".join(cell(c, r.get(c, "")) for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(anchor: str, title: str, body: str) -> tuple[str, str]:
    return anchor, f'<h2 id="{anchor}">{e(title)}</h2>\n{body}'


class Run:
    """What the sections read: the bundle and its task, the scored examples (the test split, or other data)
    and the model's outputs on them (`y`: their encoded targets), the scores, and optionally the val split
    (also held out, e.g. for the label-error search). The task fills the scores (`Task.report_scores`)."""

    def __init__(
        self,
        bundle: Bundle,
        test: Any,
        outputs: torch.Tensor | None,
        val: Any,
        val_outputs: torch.Tensor | None,
        scored_on: str,
    ) -> None:
        self.b, self.test, self.scored_on, self.m = bundle, test, scored_on, bundle.metrics
        self.task = bundle.task
        self.val = val if val is not None and len(val) else None
        self.outputs, self.val_outputs = outputs, val_outputs
        self.y = torch.empty(0)
        self.scored: dict[str, Any] = self.task.report_scores(self)

    @property
    def from_training(self) -> str:
        """A note for the sections that describe the training run when the report scores other data."""
        other = self.scored_on != "test split"
        return '<p class="muted">From the training run (not the data scored here).</p>' if other else ""


def gallery(ex: Examples, idx: np.ndarray, captions: list[str], title: str) -> str:
    """Images of `ex` in a grid, or its table rows, with their captions."""
    if not len(idx):
        return '<p class="muted">none</p>'
    if ex.images is not None:
        images = ex.images[idx]
        return image(lambda buf: plots.image_grid(images, captions, buf, title), title)
    assert ex.frame is not None and ex.ids is not None
    frame = ex.frame.iloc[idx]
    frame = frame.astype(object).where(frame.notna(), "")
    key_id, key_why = "example", "shown because"
    while key_id in frame.columns or key_why in frame.columns:  # never hide a column of the user's
        key_id, key_why = key_id + "_", key_why + "_"
    ids = ex.ids[idx]
    return table([{key_id: i, key_why: c, **row} for i, c, row in zip(ids, captions, frame.to_dict("records"))])


def _summary(r: Run) -> str:
    fp, tr = r.b.fingerprint, r.m.get("training", {})
    n_params = sum(p.numel() for p in r.b.model.parameters())
    facts = [
        ("task", r.b.spec.task),
        ("model", f"{fp.get('model', '?')} ({n_params:,} parameters)"),
        ("training data", r.m.get("data", {}).get("source", "?")),
        ("training", f"{_epochs(tr)} epochs, {tr.get('seconds', 0):.1f} s, stopped: {tr.get('stopped')}"),
        ("throughput", f"{tr.get('examples_per_second', 0):,.0f} examples/s on {tr.get('threads', '?')} threads"),
        ("scored on", f"{r.scored_on}: {len(r.test)} examples"),
        ("created", f"{fp.get('created', '?')} with sw2 {fp.get('sw2', '?')}, torch {fp.get('torch', '?')}"),
    ]
    return table([{"": k, "value": v} for k, v in facts])


def _metrics(r: Run) -> str:
    test = r.scored
    if not test:
        return '<p class="muted">no test split was scored</p>'
    base = test.get("baseline")  # other text for a language model: no unigram fitted on it
    keys = [k for k in r.task.metrics if k in test]
    rows = [
        {"metric": k, "model": float(test[k]), **({f"baseline ({base['name']})": float(base[k])} if base else {})}
        for k in keys
    ]
    out = table(rows)
    if "per_class" in test:
        out += "<h3>per class</h3>" + table(test["per_class"])
    return out


def _curves(r: Run) -> str:
    body = file_image(r.b.path / "curves.png", "training curves")
    lr = file_image(r.b.path / "lr_finder.png", "learning-rate finder")
    return body + (f"<h3>learning-rate finder</h3>{lr}" if lr else "")


def _search(r: Run) -> str:
    """The hyper-parameter search that chose this spec (`sw2 tune`): its leaderboard and plots."""
    board = r.b.path / "tune_leaderboard.md"
    if not board.is_file():
        return ""
    rows = board.read_text(encoding="utf-8").splitlines()
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    body = [dict(zip(head, (c.strip() for c in line.strip("|").split("|")))) for line in rows[2:12]]
    history = file_image(r.b.path / "tune_history.png", "optimisation history")
    importance = file_image(r.b.path / "tune_importance.png", "parameter importance")
    return "<p>trials by val metric (the best ten)</p>" + table(body) + history + importance


def saliency_section(r: Run, targets: Callable[[np.ndarray], torch.Tensor], caption: Callable[[int, int], str]) -> str:
    """Integrated-gradients saliency towards `targets(picked rows)`: maps over 8 test images captioned by
    `caption(row, target)`, or the mean attribution per numeric column of the test rows."""
    n = min(8, len(r.test))
    if not n:
        return ""
    pick = np.linspace(0, len(r.test) - 1, n).astype(int)  # spread over the (class-ordered) test split
    inputs = r.b.encoder.inputs(r.test.take(pick))
    if "image" in inputs:
        chosen = targets(pick)
        maps = image_saliency(r.b.model, inputs["image"], chosen).numpy()
        caps = [caption(int(i), int(t)) for i, t in zip(pick, chosen)]
        images = r.test.images[pick]
        return image(lambda buf: plots.saliency_grid(images, maps, caps, buf), "saliency maps")
    if "num" not in inputs:
        return '<p class="muted">no numeric columns to attribute</p>'
    rows = np.arange(min(64 if "text" in inputs else 256, len(r.test)))
    all_inputs = r.b.encoder.inputs(r.test.take(rows))
    values = column_saliency(r.b.model, all_inputs, targets(rows)).tolist()
    names = [c["name"] for c in r.b.encoder.numeric]
    title = f"mean |integrated gradients| per numeric column ({len(rows)} test rows)"
    return image(lambda buf: plots.bars(names, values, buf, title), title)


def _tests(r: Run) -> str:
    tests = r.m.get("tests")
    if not tests:
        return '<p class="muted">the spec has no model tests</p>'
    rows = [
        {
            "test": t["name"],
            "value": t["value"],
            "required": t["bound"],
            "result": "PASS" if t["passed"] else "FAIL",
            "detail": t.get("detail", ""),
        }
        for t in tests
    ]
    return r.from_training + table(rows, css={"result": ""})


def _preflight(r: Run) -> str:
    pf = r.m.get("preflight")
    if not pf:
        return '<p class="muted">the pre-flight was skipped (--no-check)</p>'
    rows = [
        {"check": v["check"], "verdict": v["status"], "what was seen / what to do": v["message"]}
        for v in pf["verdicts"]
    ]
    out = f"<p>The checks took {pf['seconds']:.1f} s before training.</p>" + table(rows, css={"verdict": ""})
    seen = file_image(r.b.path / "what_the_net_sees.png", "what the net sees")
    if not seen and (r.b.path / "what_the_net_sees.csv").is_file():
        seen = table(pd.read_csv(r.b.path / "what_the_net_sees.csv").head(12).to_dict("records"))
    return r.from_training + out + "<h3>what the net sees</h3>" + seen


def _data(r: Run) -> str:
    report = r.m.get("data", {})
    rows = [{"": k, "value": v if not isinstance(v, dict | list) else str(v)} for k, v in report.items()]
    rows = [row for row in rows if row[""] != "columns"]
    kinds = "<h3>columns as read</h3>" + table(report["columns"]) if report.get("columns") else ""  # name, kind, reason
    return r.from_training + table(rows) + kinds


def _spec(r: Run) -> str:
    return f"<pre>{e((r.b.path / 'spec.yaml').read_text(encoding='utf-8'))}</pre>"


def _robustness(r: Run) -> str:
    """`sw2 attack`'s record (attack.json) and its pictures, where the bundle has them."""
    file = r.b.path / "attack.json"
    if not file.is_file():
        return ""
    try:
        a = json.loads(file.read_text(encoding="utf-8"))
        rows = [{"inputs": part, **{k: v for k, v in a[part].items() if isinstance(v, int | float)}}
                for part in ("clean", "attacked")]  # fmt: skip
        head = (
            f"<p>{e(str(a['method']).upper())}, eps {e(a['eps'])} (L-infinity; images: pixels in [0, 1]), "
            f"{e(a['steps'])} steps, on the {e(a.get('data', ''))} ({e(a['n'])} examples)"
            + (f"; the attack changed {a['changed']:.1%} of the predictions" if "changed" in a else "")
            + ".</p>"
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return '<p class="muted">attack.json is not a record sw2 writes</p>'
    pictures = file_image(r.b.path / "attack_examples.png", "clean (top) and attacked (bottom)")
    return head + table(rows) + (f"<p>clean (top) and attacked (bottom):</p>{pictures}" if pictures else "")


HEAD: list[tuple[str, str, Callable[[Run], str]]] = [
    ("summary", "Summary", _summary),
    ("metrics", "Metrics", _metrics),
    ("curves", "Training curves", _curves),
]
TAIL: list[tuple[str, str, Callable[[Run], str]]] = [  # the task's own sections go between HEAD and TAIL
    ("robustness", "Robustness under attack", _robustness),
    ("search", "Hyper-parameter search", _search),
    ("tests", "Model tests", _tests),
    ("preflight", "Pre-flight", _preflight),
    ("data", "Data", _data),
    ("spec", "Spec", _spec),
]


def write_report(
    bundle: Bundle,
    test: Any,
    outputs: torch.Tensor | None = None,
    *,
    val: Any = None,
    val_outputs: torch.Tensor | None = None,
    scored_on: str = "test split",
    note: str = "",
    path: Path | None = None,
) -> Path:
    """Write the report of `bundle` scored on `test` to `path` (default BUNDLE/report.html) through a
    temporary file. `val` (held out too) joins the search for label errors; outputs already computed
    may be passed; `note` is shown at the top (e.g. that the data changed since training)."""
    run = Run(bundle, test, outputs, val, val_outputs, scored_on)
    sections = HEAD + run.task.report_sections() + TAIL
    parts = [_section(anchor, title, build(run)) for anchor, title, build in sections]
    parts = [(a, body) for a, body in parts if not body.endswith("</h2>\n")]
    nav = " ".join(f'<a href="#{a}">{e(a)}</a>' for a, _ in parts)
    name = e(bundle.spec.name)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>sw2 report: {name}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>sw2 report: {name}</h1>\n<nav>{nav}</nav>\n"
        + (f'<p class="WARN">{e(note)}</p>\n' if note else "")
        + "\n".join(body for _, body in parts)
        + "\n</body></html>\n"
    )
    path = path or bundle.path / "report.html"
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder for the report; create it or give another --out")
    write_file(path, page)
    return path
