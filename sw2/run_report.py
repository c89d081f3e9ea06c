"""The run report: `report.html` in every bundle, one self-contained page (images inlined as PNG data,
no scripts, no network) that a reviewer reads top to bottom:

summary · test metrics beside the baseline · per class · curves · confusion matrix and most-confused
pairs · worst mistakes · suspected label errors in the test split (confident learning on the model's
held-out probabilities) · reliability diagram · integrated-gradients saliency · model tests ·
pre-flight verdicts and what the net sees · data summary · the resolved spec.
"""

from __future__ import annotations

import base64
import html
import io
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
from sw2.evaluation.metrics import calibration, evaluate, fit_temperature
from sw2.evaluation.saliency import column_saliency, image_saliency
from sw2.files import write_file
from sw2.preflight.label_errors import captions, issue_table

GALLERY = 24  # images (or rows) in each gallery

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td.num{text-align:right}img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}
.PASS{color:#17803d;font-weight:bold}.WARN{color:#b7791f;font-weight:bold}.FAIL{color:#c53030;font-weight:bold}
.muted{color:#666}nav a{margin-right:.8em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(draw: Callable[[io.BytesIO], None], alt: str) -> str:
    buf = io.BytesIO()
    draw(buf)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="{_e(alt)}">'


def _file_img(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    return _img(lambda buf: buf.write(path.read_bytes()), alt)


def _epochs(training: dict[str, Any]) -> str:
    """Epochs trained (steps / full-data steps per epoch), fractional where a time budget stopped mid-epoch
    (older bundles: epochs begun)."""
    done = training.get("epochs_done", training.get("epochs"))
    return f"{done:g}" if isinstance(done, (int, float)) else "?"


def _table(rows: list[dict[str, Any]], css: dict[str, str] | None = None) -> str:
    """An HTML table of dict rows; numbers right-aligned, a column named in `css` styles its cells by value."""
    if not rows:
        return '<p class="muted">none</p>'
    cols = list(rows[0])
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)

    def cell(c: str, v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:.4g}</td>'
        if isinstance(v, int | np.integer):
            return f'<td class="num">{v}</td>'
        klass = f' class="{_e(v)}"' if css and c in css else ""
        return f"<td{klass}>{_e(v)}</td>"

    body = "".join("<tr>" + "".join(cell(c, r.get(c, "")) for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(anchor: str, title: str, body: str) -> tuple[str, str]:
    return anchor, f'<h2 id="{anchor}">{_e(title)}</h2>\n{body}'


class _Run:
    """What the sections read: the bundle, the scored examples (the test split, or other data) and the
    model's outputs on them, and optionally the val split (also held out) for the label-error search."""

    def __init__(
        self,
        bundle: Bundle,
        test: Examples,
        outputs: torch.Tensor | None,
        val: Examples | None,
        val_outputs: torch.Tensor | None,
        scored_on: str,
    ) -> None:
        self.b, self.test, self.scored_on = bundle, test, scored_on
        self.outputs = outputs if outputs is not None else bundle.outputs(test)
        self.val = val if val is not None and len(val) else None
        self.val_outputs = None
        if self.val is not None:
            self.val_outputs = val_outputs if val_outputs is not None else bundle.outputs(self.val)
        self.y = bundle.encoder.target(test.target)
        self.classes = bundle.classes
        self.probs = self.outputs.softmax(1) if self.classes is not None else None
        self.m = bundle.metrics
        self.scored = evaluate(self.outputs, self.y, bundle.encoder) if len(test) else {}
        if self.classes is None:  # regression: values in the target's units
            self.truth = bundle.encoder.decode_regression(self.y).numpy()
            self.values = bundle.encoder.decode_regression(self.outputs.squeeze(1)).numpy()

    def name(self, i: int) -> str:
        return str(self.classes[i]) if self.classes is not None else f"{i}"

    @property
    def from_training(self) -> str:
        """A note for the sections that describe the training run when the report scores other data."""
        other = self.scored_on != "test split"
        return '<p class="muted">From the training run (not the data scored here).</p>' if other else ""


def _gallery(ex: Examples, idx: np.ndarray, captions: list[str], title: str) -> str:
    """Images of `ex` in a grid, or its table rows, with their captions."""
    if not len(idx):
        return '<p class="muted">none</p>'
    if ex.images is not None:
        images = ex.images[idx]
        return _img(lambda buf: plots.image_grid(images, captions, buf, title), title)
    assert ex.frame is not None and ex.ids is not None
    frame = ex.frame.iloc[idx]
    frame = frame.astype(object).where(frame.notna(), "")
    key_id, key_why = "example", "shown because"
    while key_id in frame.columns or key_why in frame.columns:  # never hide a column of the user's
        key_id, key_why = key_id + "_", key_why + "_"
    ids = ex.ids[idx]
    return _table([{key_id: i, key_why: c, **row} for i, c, row in zip(ids, captions, frame.to_dict("records"))])


def _summary(r: _Run) -> str:
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
    return _table([{"": k, "value": v} for k, v in facts])


def _metrics(r: _Run) -> str:
    test = r.scored
    if not test:
        return '<p class="muted">no test split was scored</p>'
    base = test["baseline"]
    keys = [k for k in ("accuracy", "macro_f1", "log_loss", "mae", "rmse", "r2") if k in test]
    rows = [{"metric": k, "model": float(test[k]), f"baseline ({base['name']})": float(base[k])} for k in keys]
    out = _table(rows)
    if "per_class" in test:
        out += "<h3>per class</h3>" + _table(test["per_class"])
    return out


def _curves(r: _Run) -> str:
    body = _file_img(r.b.path / "curves.png", "training curves")
    lr = _file_img(r.b.path / "lr_finder.png", "learning-rate finder")
    return body + (f"<h3>learning-rate finder</h3>{lr}" if lr else "")


def _confusion(r: _Run) -> str:
    test = r.scored
    if "confusion" not in test:
        return ""
    cm = np.array(test["confusion"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(off, axis=None)[::-1][:10]
    pairs = [
        {
            "true": r.name(i),
            "predicted as": r.name(j),
            "count": int(off[i, j]),
            "share of true": f"{off[i, j] / cm[i].sum():.1%}",
        }
        for i, j in zip(*np.unravel_index(flat, cm.shape))
        if off[i, j] > 0
    ]
    matrix = _img(lambda buf: plots.confusion(test["confusion"], test["classes"], buf), "confusion matrix")
    return matrix + "<h3>most-confused pairs</h3>" + _table(pairs)


def _mistakes(r: _Run) -> str:
    if r.probs is not None:
        conf, pred = r.probs.max(1)
        wrong = np.flatnonzero((pred != r.y).numpy())
        idx = wrong[np.argsort(-conf[wrong].numpy(), kind="stable")][:GALLERY]
        caps = [f"{r.name(int(r.y[i]))} → {r.name(int(pred[i]))} {float(conf[i]):.2f}" for i in idx]
        what = "most confident wrong predictions (true → predicted, confidence)"
    else:
        idx = np.argsort(-np.abs(r.values - r.truth), kind="stable")[:GALLERY]
        caps = [f"true {r.truth[i]:.4g}, predicted {r.values[i]:.4g}" for i in idx]
        what = "largest absolute errors"
    return f"<p>{_e(what)}</p>" + _gallery(r.test, idx, caps, what)


def _label_errors(r: _Run) -> str:
    if r.probs is None or r.classes is None:
        return '<p class="muted">for classification only</p>'
    pool, logits, where = r.test, r.outputs, r.scored_on
    if r.val is not None:
        pool, logits, where = r.val.join(r.test), torch.cat([r.val_outputs, r.outputs]), "validation and test split"
    y = r.b.encoder.target(pool.target)
    temperature = fit_temperature(logits, y)
    try:
        table = issue_table(pool.ids, y.numpy(), (logits / temperature).softmax(1).numpy(), r.classes)
    except UserError as err:
        return f'<p class="muted">{_e(err)}</p>'
    flagged = table[table["flagged"]].head(GALLERY)
    intro = (
        f"<p>{int(table['flagged'].sum())} of {len(table)} {where} labels look wrong by confident learning "
        f"(cleanlab) on the model's held-out probabilities, calibrated by a temperature of {temperature:.3g} "
        "fitted to these examples. Shown: given → suggested, p(suggested). For the training data, run "
        "<code>sw2 doctor</code>.</p>"
    )
    title = "suspected label errors: given → suggested p(suggested)"
    return intro + _gallery(pool, flagged["position"].to_numpy(), captions(flagged), title)


def _calibration(r: _Run) -> str:
    if r.probs is None:
        return _img(lambda buf: plots.scatter(r.truth, r.values, buf), "predicted against true")
    cal = calibration(r.probs, r.y)
    return _img(lambda buf: plots.reliability(cal, buf), "reliability diagram")


def _saliency(r: _Run) -> str:
    n = min(8, len(r.test))
    if not n:
        return ""
    pick = np.linspace(0, len(r.test) - 1, n).astype(int)  # spread over the (class-ordered) test split
    inputs = r.b.encoder.inputs(r.test.take(pick))
    pred = r.outputs[pick].argmax(1) if r.probs is not None else torch.zeros(n, dtype=torch.long)
    if "image" in inputs:
        maps = image_saliency(r.b.model, inputs["image"], pred).numpy()
        if r.classes is not None:
            caps = [f"{r.name(int(r.y[i]))} / {r.name(int(p))}" for i, p in zip(pick, pred)]
        else:
            caps = [f"{r.truth[i]:.3g} / {r.values[i]:.3g}" for i in pick]
        assert r.test.images is not None
        images = r.test.images[pick]
        return _img(lambda buf: plots.saliency_grid(images, maps, caps, buf), "saliency maps")
    if "num" not in inputs:
        return '<p class="muted">no numeric columns to attribute</p>'
    rows = np.arange(min(64 if "text" in inputs else 256, len(r.test)))
    all_inputs = r.b.encoder.inputs(r.test.take(rows))
    targets = r.outputs[rows].argmax(1) if r.probs is not None else torch.zeros(len(rows), dtype=torch.long)
    values = column_saliency(r.b.model, all_inputs, targets).tolist()
    names = [c["name"] for c in r.b.encoder.numeric]
    title = f"mean |integrated gradients| per numeric column ({len(rows)} test rows)"
    return _img(lambda buf: plots.bars(names, values, buf, title), title)


def _tests(r: _Run) -> str:
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
    return r.from_training + _table(rows, css={"result": ""})


def _preflight(r: _Run) -> str:
    pf = r.m.get("preflight")
    if not pf:
        return '<p class="muted">the pre-flight was skipped (--no-check)</p>'
    rows = [
        {"check": v["check"], "verdict": v["status"], "what was seen / what to do": v["message"]}
        for v in pf["verdicts"]
    ]
    out = f"<p>The checks took {pf['seconds']:.1f} s before training.</p>" + _table(rows, css={"verdict": ""})
    seen = _file_img(r.b.path / "what_the_net_sees.png", "what the net sees")
    if not seen and (r.b.path / "what_the_net_sees.csv").is_file():
        seen = _table(pd.read_csv(r.b.path / "what_the_net_sees.csv").head(12).to_dict("records"))
    return r.from_training + out + "<h3>what the net sees</h3>" + seen


def _data(r: _Run) -> str:
    report = r.m.get("data", {})
    rows = [{"": k, "value": v if not isinstance(v, dict | list) else str(v)} for k, v in report.items()]
    return r.from_training + _table(rows)


def _spec(r: _Run) -> str:
    return f"<pre>{_e((r.b.path / 'spec.yaml').read_text(encoding='utf-8'))}</pre>"


SECTIONS: list[tuple[str, str, Callable[[_Run], str]]] = [
    ("summary", "Summary", _summary),
    ("metrics", "Metrics", _metrics),
    ("curves", "Training curves", _curves),
    ("confusion", "Confusion", _confusion),
    ("mistakes", "Worst mistakes", _mistakes),
    ("label-errors", "Suspected label errors", _label_errors),
    ("calibration", "Calibration", _calibration),
    ("saliency", "Saliency", _saliency),
    ("tests", "Model tests", _tests),
    ("preflight", "Pre-flight", _preflight),
    ("data", "Data", _data),
    ("spec", "Spec", _spec),
]


def write_report(
    bundle: Bundle,
    test: Examples,
    outputs: torch.Tensor | None = None,
    *,
    val: Examples | None = None,
    val_outputs: torch.Tensor | None = None,
    scored_on: str = "test split",
    note: str = "",
    path: Path | None = None,
) -> Path:
    """Write the report of `bundle` scored on `test` to `path` (default BUNDLE/report.html) through a
    temporary file. `val` (held out too) joins the search for label errors; outputs already computed
    may be passed; `note` is shown at the top (e.g. that the data changed since training)."""
    run = _Run(bundle, test, outputs, val, val_outputs, scored_on)
    parts = [_section(anchor, title, build(run)) for anchor, title, build in SECTIONS]
    parts = [(a, body) for a, body in parts if not body.endswith("</h2>\n")]
    nav = " ".join(f'<a href="#{a}">{_e(a)}</a>' for a, _ in parts)
    name = _e(bundle.spec.name)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>sw2 report: {name}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>sw2 report: {name}</h1>\n<nav>{nav}</nav>\n"
        + (f'<p class="WARN">{_e(note)}</p>\n' if note else "")
        + "\n".join(body for _, body in parts)
        + "\n</body></html>\n"
    )
    path = path or bundle.path / "report.html"
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder for the report; create it or give another --out")
    write_file(path, page)
    return path
