"""regress's sections of report.html: largest errors, predicted against true, and saliency."""

from __future__ import annotations

import numpy as np
import torch

from sw2.evaluation import plots
from sw2.run_report import GALLERY, Run, e, gallery, image, saliency_section


def _values(r: Run) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted values, in the target's units."""
    decode = r.task.decode  # type: ignore[attr-defined]
    return decode(r.b.encoder, r.y).numpy(), decode(r.b.encoder, r.outputs.squeeze(1)).numpy()


def mistakes(r: Run) -> str:
    truth, values = _values(r)
    idx = np.argsort(-np.abs(values - truth), kind="stable")[:GALLERY]
    caps = [f"true {truth[i]:.4g}, predicted {values[i]:.4g}" for i in idx]
    what = "largest absolute errors"
    return f"<p>{e(what)}</p>" + gallery(r.test, idx, caps, what)


def predicted_vs_true(r: Run) -> str:
    truth, values = _values(r)
    return image(lambda buf: plots.scatter(truth, values, buf), "predicted against true")


def saliency(r: Run) -> str:
    truth, values = _values(r)

    def targets(pick: np.ndarray) -> torch.Tensor:
        return torch.zeros(len(pick), dtype=torch.long)

    def caption(i: int, target: int) -> str:
        return f"{truth[i]:.3g} / {values[i]:.3g}"

    return saliency_section(r, targets, caption)
