"""generate_image's sections of report.html: the sample grids, the latent interpolation, each epoch's grid
from the same noise, and the judge's scores over the epochs."""

from __future__ import annotations

from typing import Any

import numpy as np

from sw2.data.images import grid_png
from sw2.evaluation import plots
from sw2.run_report import Run, e, file_image, image, table

__all__ = ["grid_png", "samples", "score_curves"]


def samples(r: Run) -> str:
    m = r.m.get("test", {})
    base = m.get("baseline", {})
    rows = [
        {"images": "the model's samples", "n": m.get("n"), "Fréchet distance": m.get("frechet_distance"),
         "confident (≥ 0.9)": m.get("confident"), "class entropy": m.get("class_entropy")},
    ] + [
        {"images": part.get("name", ""), "n": None, "Fréchet distance": part.get("frechet_distance"),
         "confident (≥ 0.9)": part.get("confident"), "class entropy": part.get("class_entropy")}
        for part in (m.get("real", {}), base) if part
    ]  # fmt: skip
    if "confident" not in m:  # images without classes: no class scores
        rows = [{k: v for k, v in row.items() if k not in ("confident (≥ 0.9)", "class entropy")} for row in rows]
    judge = r.m.get("judge", {})
    if "turn_accuracy" in judge:  # images without classes
        intro = (
            f"<p>Scored by the judge, a {e(judge.get('model', ''))} ({e(judge.get('epochs', ''))} epochs; it tells "
            f"{judge.get('turn_accuracy') or 0:.2%} of real held-out images' turns apart): the Fréchet distance "
            "between its features of the samples and of real validation images (compares only between sw2 runs "
            "judged alike). Without classes there are no class scores.</p>"
        )
    else:
        intro = (
            f"<p>Scored by the judge, a classifier sw2 trained on the same data ({e(judge.get('model', ''))}, "
            f"{e(judge.get('epochs', ''))} epochs, accuracy {judge['accuracy']:.2%} on real held-out images): "
            "the Fréchet distance between its features of the samples and of real validation images (compares only "
            f"between sw2 runs judged alike), the share it labels with confidence ≥ 0.9, and the entropy of its "
            f"predicted classes (ln K = {m.get('class_entropy_max', 0):.3f} for K classes equally covered).</p>"
        )
    pictures = file_image(r.b.path / "samples.png", "samples") + "<h3>latent interpolation</h3>"
    pictures += file_image(r.b.path / "interpolation.png", "interpolation")
    epochs = sorted(r.b.path.glob("samples_epoch_*.png"))
    if epochs:
        shown = (
            epochs if len(epochs) <= 6 else [epochs[i] for i in np.linspace(0, len(epochs) - 1, 6).round().astype(int)]
        )
        pictures += "<h3>the same noise, epoch by epoch</h3>" + "".join(
            f"<figure>{file_image(p, p.stem)}<figcaption>{e(caption(p))}</figcaption></figure>" for p in shown
        )
    return intro + table(rows) + pictures


def caption(path: Any) -> str:
    return path.stem.removeprefix("samples_").replace("_", " ")


def score_curves(r: Run) -> str:
    history = r.m.get("history") or []
    if not history and (r.b.path / "history.json").is_file():
        import json

        history = json.loads((r.b.path / "history.json").read_text(encoding="utf-8"))
    points = [row for row in history if "val_loss" in row]
    if not points:
        return '<p class="muted">no epochs recorded</p>'
    out = ""
    for key, title in (("val_loss", "Fréchet distance (lower is better)"), ("confident", "share confident ≥ 0.9"),
                       ("class_entropy", "class entropy")):  # fmt: skip
        values = [row[key] for row in points if key in row]
        if values:
            out += image(lambda buf, v=values, t=title: plots.line(v, buf, t, "epoch", t), title)
    return out
