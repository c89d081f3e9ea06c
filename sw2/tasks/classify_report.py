"""classify's sections of report.html: confusion, worst mistakes, suspected label errors, calibration and
saliency (each `section(run) -> html`, see sw2.run_report)."""

from __future__ import annotations

import numpy as np
import torch

from sw2.errors import UserError
from sw2.evaluation import plots
from sw2.evaluation.metrics import calibration as reliability
from sw2.evaluation.metrics import fit_temperature
from sw2.preflight.label_errors import captions, issue_table
from sw2.run_report import GALLERY, Run, e, gallery, image, saliency_section, table


def _name(r: Run, i: int) -> str:
    return str((r.b.encoder.classes or [])[i])


def confusion(r: Run) -> str:
    test = r.scored
    if "confusion" not in test:
        return ""
    cm = np.array(test["confusion"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(off, axis=None)[::-1][:10]
    pairs = [
        {
            "true": _name(r, i),
            "predicted as": _name(r, j),
            "count": int(off[i, j]),
            "share of true": f"{off[i, j] / cm[i].sum():.1%}",
        }
        for i, j in zip(*np.unravel_index(flat, cm.shape))
        if off[i, j] > 0
    ]
    matrix = image(lambda buf: plots.confusion(test["confusion"], test["classes"], buf), "confusion matrix")
    return matrix + "<h3>most-confused pairs</h3>" + table(pairs)


def mistakes(r: Run) -> str:
    conf, pred = r.outputs.softmax(1).max(1)
    wrong = np.flatnonzero((pred != r.y).numpy())
    idx = wrong[np.argsort(-conf[wrong].numpy(), kind="stable")][:GALLERY]
    caps = [f"{_name(r, int(r.y[i]))} → {_name(r, int(pred[i]))} {float(conf[i]):.2f}" for i in idx]
    what = "most confident wrong predictions (true → predicted, confidence)"
    return f"<p>{e(what)}</p>" + gallery(r.test, idx, caps, what)


def label_errors(r: Run) -> str:
    pool, logits, where = r.test, r.outputs, r.scored_on
    if r.val is not None and r.val_outputs is not None:
        pool, logits, where = r.val.join(r.test), torch.cat([r.val_outputs, r.outputs]), "validation and test split"
    y = r.b.encoder.target(pool.target)
    temperature = fit_temperature(logits, y)
    try:
        found = issue_table(pool.ids, y.numpy(), (logits / temperature).softmax(1).numpy(), r.b.encoder.classes or [])
    except UserError as err:
        return f'<p class="muted">{e(err)}</p>'
    flagged = found[found["flagged"]].head(GALLERY)
    intro = (
        f"<p>{int(found['flagged'].sum())} of {len(found)} {where} labels look wrong by confident learning "
        f"(cleanlab) on the model's held-out probabilities, calibrated by a temperature of {temperature:.3g} "
        "fitted to these examples. Shown: given → suggested, p(suggested). For the training data, run "
        "<code>sw2 doctor</code>.</p>"
    )
    title = "suspected label errors: given → suggested p(suggested)"
    return intro + gallery(pool, flagged["position"].to_numpy(), captions(flagged), title)


def calibration(r: Run) -> str:
    cal = reliability(r.outputs.softmax(1), r.y)
    return image(lambda buf: plots.reliability(cal, buf), "reliability diagram")


def saliency(r: Run) -> str:
    def targets(pick: np.ndarray) -> torch.Tensor:
        return r.outputs[pick].argmax(1)

    def caption(i: int, target: int) -> str:
        return f"{_name(r, int(r.y[i]))} / {_name(r, target)}"

    return saliency_section(r, targets, caption)
