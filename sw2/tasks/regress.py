"""regress: one number per example. The target is standardised on the training split; MSE loss, R² as
the validation score; MAE, RMSE and R² in the target's units beside the train-mean baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sw2.data.dataset import Prepared
from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.evaluation.metrics import regression
from sw2.task_rules import REGRESS
from sw2.tasks import TASKS
from sw2.tasks import regress_report as r
from sw2.tasks.supervised import Supervised
from sw2.tasks.target import TargetCodec

if TYPE_CHECKING:
    from sw2.bundle import Bundle


class Regress(Supervised):
    blend = REGRESS.blend
    metrics = REGRESS.metrics  # declared in sw2.task_rules, where the spec reads them
    leak_score = "r2"

    # ---- the target ------------------------------------------------------------------------------
    def fit_target(self, codec: TargetCodec, values: np.ndarray, target: str) -> None:
        series = pd.Series(values)
        nums = pd.to_numeric(series, errors="coerce")
        finite = np.isfinite(nums.to_numpy(float))
        if not finite.all():
            raise UserError(
                f"target '{target}': value {series[~finite].iloc[0]!r} is not a finite number; task regress "
                f"needs a numeric target (or use task: classify)"
            )
        codec.target_mean, codec.target_std = float(nums.mean()), float(nums.std(ddof=0)) or 1.0

    def encode_target(self, codec: TargetCodec, values: np.ndarray) -> torch.Tensor:
        """The standardised value."""
        vals = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float32)
        return torch.from_numpy((vals - codec.target_mean) / codec.target_std)

    def decode(self, encoder: Encoder, out: torch.Tensor) -> torch.Tensor:
        """Standardised values back in the target's units."""
        return out * encoder.target_std + encoder.target_mean

    def tiny_target(self, x: np.ndarray) -> np.ndarray:
        return 2 * x[:, 0] - x[:, 1]

    # ---- training --------------------------------------------------------------------------------
    def example_losses(self, out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.mse_loss(out.float().squeeze(1), y, reduction="none")

    def distill_losses(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """The squared distance to the teacher's value (the temperature softens nothing here)."""
        return F.mse_loss(out.float(), teacher.float(), reduction="none").mean(1)

    def score(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """R² on the standardised target."""
        resid = ((out.float().squeeze(1) - y) ** 2).sum()
        total = ((y - y.mean()) ** 2).sum().clamp_min(1e-12)
        return (1 - resid / total).item()

    def output_bias(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        return y.float().mean().reshape(1)

    def init_loss(self, data: Prepared) -> tuple[float, str]:
        y = data.train.target.float()
        return float(((y - y.mean()) ** 2).mean()), "target variance"

    # ---- scores ----------------------------------------------------------------------------------
    def evaluate(self, outputs: torch.Tensor, y: torch.Tensor, encoder: Encoder) -> dict[str, Any]:
        """MAE, RMSE and R² in the target's units; the baseline predicts the train split's mean."""
        truth = self.decode(encoder, y)
        model = regression(self.decode(encoder, outputs.squeeze(1)), truth)
        mean = torch.full((len(y),), encoder.target_mean)
        return {"n": len(y), **model, "baseline": {"name": "train mean", **regression(mean, truth)}}

    def beats_baseline(self, scores: dict[str, Any]) -> tuple[bool, str]:
        base = scores["baseline"]
        msg = f"RMSE {scores['rmse']:.4g} vs {base['rmse']:.4g}, R² {scores['r2']:.4f} vs {base['r2']:.4f}"
        return scores["rmse"] < base["rmse"], msg + f" ({base['name']})"

    def report_sections(self) -> list[tuple[str, str, Any]]:
        return [
            ("mistakes", "Worst mistakes", r.mistakes),
            ("calibration", "Predicted against true", r.predicted_vs_true),
            ("saliency", "Saliency", r.saliency),
        ]

    # ---- model tests -----------------------------------------------------------------------------
    def unchanged(self, a: torch.Tensor, b: torch.Tensor, tolerance: float) -> torch.Tensor:
        """Within `tolerance` target standard deviations."""
        return (a - b).abs().squeeze(1) <= tolerance

    def right(self, out: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """Within 0.1 target standard deviations."""
        return (out.squeeze(1) - truth).abs() <= 0.1

    # ---- predictions -----------------------------------------------------------------------------
    def predict(self, bundle: Bundle, data: Any) -> np.ndarray:
        """Values in the target's units."""
        return self.decode(bundle.encoder, bundle.outputs(data).squeeze(1)).numpy()

    def answers(self, encoder: Encoder, outputs: torch.Tensor, top: int) -> list[dict[str, Any]]:
        return [{"value": float(v)} for v in self.decode(encoder, outputs.squeeze(1)).tolist()]

    def prediction_rows(self, bundle: Bundle, data: Any, top: int) -> list[dict[str, Any]]:
        examples = bundle.examples(data)
        return [{"id": i, "prediction": float(v)} for i, v in zip(examples.ids, self.predict(bundle, examples))]


TASKS.register("regress")(Regress("regress", "r2"))
