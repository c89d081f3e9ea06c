"""classify: one class label per example. Cross-entropy on the logits, accuracy, per-class precision /
recall / F1, the confusion matrix, log-loss and the majority-class baseline; predictions are labels with
probabilities."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sw2.data.dataset import Prepared
from sw2.data.encode import Encoder, plain
from sw2.evaluation import plots
from sw2.evaluation.metrics import classification
from sw2.task_rules import CLASSIFY
from sw2.tasks import TASKS
from sw2.tasks import classify_report as r
from sw2.tasks.supervised import Supervised
from sw2.tasks.target import TargetCodec

if TYPE_CHECKING:
    from sw2.bundle import Bundle


class Classify(Supervised):
    blend = CLASSIFY.blend
    discrete = True
    leak_score = "accuracy"
    metrics = CLASSIFY.metrics  # declared in sw2.task_rules, where the spec reads them

    # ---- the target ------------------------------------------------------------------------------
    def fit_target(self, codec: TargetCodec, values: np.ndarray, target: str) -> None:
        series = pd.Series(values)
        codec.classes = [plain(v) for v in sorted(series.unique(), key=lambda v: (str(type(v)), v))]
        counts = series.value_counts()
        codec.class_counts = [int(counts[c]) for c in codec.classes]

    def encode_target(self, codec: TargetCodec, values: np.ndarray) -> torch.Tensor:
        """The class index of each value, -1 for a class unseen in training."""
        index = {v: i for i, v in enumerate(codec.classes or [])}
        return torch.tensor([index.get(plain(v), -1) for v in values], dtype=torch.long)

    def n_outputs(self, codec: TargetCodec) -> int:
        return len(codec.classes or [])

    def target_groups(self, values: np.ndarray) -> int:
        return len(np.unique(np.asarray(values).astype(str)))

    def scorable(self, target: torch.Tensor) -> torch.Tensor:
        """A class seen in training (an unseen one is encoded -1)."""
        return target >= 0

    # ---- training --------------------------------------------------------------------------------
    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(out.float(), y, label_smoothing=label_smoothing, reduction="none")

    def distill_losses(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """T² x KL(teacher's softmax at temperature T || the student's): T² keeps the gradient's scale as T
        changes (Hinton et al., 2015)."""
        student = F.log_softmax(out.float() / temperature, dim=1)
        soft = F.log_softmax(teacher.float() / temperature, dim=1)
        return F.kl_div(student, soft, log_target=True, reduction="none").sum(1) * temperature**2

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        return (out.argmax(1) == y).float().mean().item()

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        prior = torch.bincount(y, minlength=n_out).float().clamp_min(1) / len(y)
        return prior.log() - prior.log().mean()

    def init_loss(self, data: Prepared) -> tuple[float, str]:
        prior = torch.tensor(data.encoder.class_counts or [1], dtype=torch.float).clamp_min(1e-3)
        prior = prior / prior.sum()
        h, k = float(-(prior * prior.log()).sum()), len(prior)
        why = f"ln {k} = {math.log(k):.3f} for balanced classes" if abs(h - math.log(k)) < 0.01 else "label entropy"
        return h, why

    # ---- scores ----------------------------------------------------------------------------------
    def evaluate(self, outputs: torch.Tensor, y: torch.Tensor, encoder: Encoder) -> dict[str, Any]:
        """Accuracy, macro-F1, log-loss, per class and the confusion matrix; the baseline predicts the train
        split's class shares."""
        classes = encoder.classes or []
        n, k = len(y), len(classes)
        prior = torch.tensor(encoder.class_counts or [1] * k).float().clamp_min(0.5)
        base = classification((prior / prior.sum()).expand(n, k), y, classes)
        model = classification(outputs.softmax(1), y, classes)
        baseline = {"name": "majority class", **{m: base[m] for m in ("accuracy", "macro_f1", "log_loss")}}
        return {"n": n, **model, "baseline": baseline}

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        ok = scores["accuracy"] > base["accuracy"] and scores["log_loss"] < base["log_loss"]
        msg = f"accuracy {scores['accuracy']:.4f} vs {base['accuracy']:.4f}, log-loss {scores['log_loss']:.4f} "
        return ok, msg + f"vs {base['log_loss']:.4f} ({base['name']})"

    def write_files(self, folder: Path, data: Prepared, metrics: dict[str, Any]) -> None:
        if "confusion" in metrics.get("test", {}):
            plots.confusion(metrics["test"]["confusion"], data.encoder.classes or [], folder / "confusion.png")

    def report_sections(self) -> list[tuple[str, str, Any]]:
        return [
            ("confusion", "Confusion", r.confusion),
            ("mistakes", "Worst mistakes", r.mistakes),
            ("label-errors", "Suspected label errors", r.label_errors),
            ("calibration", "Calibration", r.calibration),
            ("saliency", "Saliency", r.saliency),
        ]

    # ---- model tests -----------------------------------------------------------------------------
    def unchanged(self, a: torch.Tensor, b: torch.Tensor, tolerance: float) -> torch.Tensor:
        return a.argmax(1) == b.argmax(1)

    def right(self, out: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        return out.argmax(1) == truth

    # ---- predictions -----------------------------------------------------------------------------
    def predict(self, bundle: Bundle, data: Any) -> np.ndarray:
        """Class labels."""
        return np.asarray(bundle.encoder.classes, dtype=object)[bundle.outputs(data).argmax(1).numpy()]

    def predict_proba(self, bundle: Bundle, data: Any) -> np.ndarray:
        return bundle.outputs(data).softmax(1).numpy()

    def answers(self, encoder: Encoder, outputs: torch.Tensor, top: int) -> list[dict[str, Any]]:
        """The label and the `top` classes with their probabilities, most likely first."""
        probs = outputs.softmax(1)
        p, i = probs.topk(min(top, probs.shape[1]), dim=1)
        classes = encoder.classes or []
        return [
            {
                "label": json_label(classes[js[0]]),
                "top": [{"class": json_label(classes[j]), "probability": round(q, 6)} for q, j in zip(ps, js)],
            }  # fmt: skip
            for ps, js in zip(p.tolist(), i.tolist())
        ]

    def prediction_rows(self, bundle: Bundle, data: Any, top: int) -> list[dict[str, Any]]:
        """id, prediction, probability, then the next `top` - 1 classes with theirs."""
        examples = bundle.examples(data)
        rows = []
        for i, best in zip(examples.ids, bundle.top(examples, top)):
            row: dict[str, Any] = {"id": i, "prediction": best[0][0], "probability": best[0][1]}
            for rank, (label, p) in enumerate(best[1:], start=2):
                row[f"top{rank}"], row[f"p{rank}"] = label, p
            rows.append(row)
        return rows


def json_label(label: Any) -> Any:
    """A class label as JSON holds it (numpy integers as ints): the server's answers and /v1/model."""
    return label.item() if isinstance(label, np.generic) else label


TASKS.register("classify")(Classify("classify", "accuracy"))
