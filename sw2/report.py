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
import os
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
from sw2.evaluation.metrics import calibration, evaluate
from sw2.evaluation.saliency import column_saliency, image_saliency
from sw2.preflight.label_errors import issue_table

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
    """What the sections read: the bundle, the test examples and the model's outputs on them."""

    def __init__(self, bundle: Bundle, test: Examples, outputs: torch.Tensor | None) -> None:
        self.b, self.test = bundle, test
        self.outputs = outputs if outputs is not None else bundle.outputs(test)
        self.y = bundle.encoder.target(test.target)
        self.classes = bundle.classes
        self.probs = self.outputs.softmax(1) if self.classes is not None else None
        self.m = bundle.metrics
        self.scored = evaluate(self.outputs, self.y, bundle.encoder) if len(test) else {}

    def name(self, i: int) -> str:
        return str(self.classes[i]) if self.classes is not None else f"{i}"

    def examples_html(self, idx: np.ndarray, captions: list[str], title: str) -> str:
        """A gallery of test images, or the rows of a table, with their captions."""
        if not len(idx):
            return '<p class="muted">none</p>'
        if self.test.images is not None:
            return _img(lambda buf: plots.image_grid(self.test.images[idx], captions, buf, title), title)
        assert self.test.frame is not None
        rows = self.test.frame.iloc[idx].reset_index(drop=True)
        rows.insert(0, "what", captions)
        rows.insert(0, "id", self.test.ids[idx])
        return _table(rows.astype(object).where(rows.notna(), "").to_dict("records"))


def _summary(r: _Run) -> str:
    fp, tr = r.b.fingerprint, r.m.get("training", {})
    n_params = sum(p.numel() for p in r.b.model.parameters())
    facts = [
        ("task", r.b.spec.task),
        ("model", f"{fp.get('model', '?')} ({n_params:,} parameters)"),
        ("data", r.m.get("data", {}).get("source", "?")),
        ("training", f"{tr.get('epochs', '?')} epochs, {tr.get('seconds', 0):.1f} s, stopped: {tr.get('stopped')}"),
        ("throughput", f"{tr.get('examples_per_second', 0):,.0f} examples/s on {tr.get('threads', '?')} threads"),
        ("examples scored", len(r.test)),
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
            "share of true": off[i, j] / cm[i].sum(),
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
        truth = r.b.encoder.decode_regression(r.y).numpy()
        pred = r.b.encoder.decode_regression(r.outputs.squeeze(1)).numpy()
        idx = np.argsort(-np.abs(pred - truth), kind="stable")[:GALLERY]
        caps = [f"true {truth[i]:.4g}, predicted {pred[i]:.4g}" for i in idx]
        what = "largest absolute errors"
    return f"<p>{_e(what)}</p>" + r.examples_html(idx, caps, what)


def _label_errors(r: _Run) -> str:
    if r.probs is None or r.classes is None:
        return '<p class="muted">for classification only</p>'
    try:
        table = issue_table(r.test.ids, r.y.numpy(), r.probs.numpy(), r.classes)
    except UserError as err:
        return f'<p class="muted">{_e(err)}</p>'
    flagged = table[table["flagged"]].head(GALLERY)
    intro = (
        f"<p>{int(table['flagged'].sum())} of {len(table)} test labels look wrong by confident learning on the "
        "model's held-out probabilities (given → suggested, p(suggested)); for the training data run "
        "<code>sw2 doctor</code>.</p>"
    )
    caps = [f"{g} → {s} {p:.2f}" for g, s, p in zip(flagged["given"], flagged["suggested"], flagged["p_suggested"])]
    return intro + r.examples_html(flagged["position"].to_numpy(), caps, "suspected label errors: given → suggested")


def _calibration(r: _Run) -> str:
    if r.probs is None:
        truth = r.b.encoder.decode_regression(r.y).numpy()
        pred = r.b.encoder.decode_regression(r.outputs.squeeze(1)).numpy()
        return _img(lambda buf: plots.scatter(truth, pred, buf), "predicted against true")
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
        caps = [f"{r.name(int(r.y[i]))} / {r.name(int(p))}" for i, p in zip(pick, pred)]
        assert r.test.images is not None
        images = r.test.images[pick]
        return _img(lambda buf: plots.saliency_grid(images, maps, caps, buf), "saliency maps")
    if "num" not in inputs:
        return '<p class="muted">no numeric columns to attribute</p>'
    rows = np.arange(min(256, len(r.test)))
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
    return _table(rows, css={"result": ""})


def _preflight(r: _Run) -> str:
    pf = r.m.get("preflight")
    if not pf:
        return '<p class="muted">the pre-flight was skipped (--no-check)</p>'
    rows = [
        {"check": v["check"], "verdict": v["status"], "what was seen / what to do": v["message"]}
        for v in pf["verdicts"]
    ]
    out = f"<p>{pf['seconds']:.1f} s</p>" + _table(rows, css={"verdict": ""})
    seen = _file_img(r.b.path / "what_the_net_sees.png", "what the net sees")
    if not seen and (r.b.path / "what_the_net_sees.csv").is_file():
        seen = _table(pd.read_csv(r.b.path / "what_the_net_sees.csv").head(12).to_dict("records"))
    return out + "<h3>what the net sees</h3>" + seen


def _data(r: _Run) -> str:
    report = r.m.get("data", {})
    return _table([{"": k, "value": v if not isinstance(v, dict | list) else str(v)} for k, v in report.items()])


def _spec(r: _Run) -> str:
    return f"<pre>{_e((r.b.path / 'spec.yaml').read_text())}</pre>"


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


def write_report(bundle: Bundle, test: Examples, outputs: torch.Tensor | None = None, path: Path | None = None) -> Path:
    """Write the report of `bundle` scored on `test` (its outputs, if already computed) to `path`
    (default BUNDLE/report.html), through a temporary file."""
    run = _Run(bundle, test, outputs)
    parts = [_section(anchor, title, build(run)) for anchor, title, build in SECTIONS]
    parts = [(a, body) for a, body in parts if not body.endswith("</h2>\n")]
    nav = " ".join(f'<a href="#{a}">{_e(a)}</a>' for a, _ in parts)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>sw2 report: {_e(bundle.spec.name)}'
        f"</title><style>{STYLE}</style></head><body>\n<h1>sw2 report: {_e(bundle.spec.name)}</h1>\n"
        f"<nav>{nav}</nav>\n" + "\n".join(body for _, body in parts) + "\n</body></html>\n"
    )
    path = path or bundle.path / "report.html"
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(page)
    tmp.replace(path)
    return path
