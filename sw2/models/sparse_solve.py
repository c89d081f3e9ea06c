"""A linear model on sparse features (a bag of words), solved to the optimum by scikit-learn.

Classification: multinomial logistic regression (L-BFGS), its inverse penalty C chosen from a grid by stratified
k-fold cross-validation on the training rows (LogisticRegressionCV, by held-out log loss: on val it matched or
beat held-out accuracy as the criterion on three Chinese sets): what the usual TF-IDF + logistic regression
baseline does, on the bag's own features. Regression: ridge regression, its penalty chosen by RidgeCV's efficient
leave-one-out. The val split is left a fair judge between models. Returns the weights as tensors in the shape
of the model's outputs (a row per class).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sw2.errors import UserError

CS = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0)  # inverse penalties (scikit-learn's C: the loss is summed over rows)
FOLDS = 5
MAX_ITER = 1000


def solve(
    rows: Any, side: torch.Tensor | None, target: torch.Tensor, discrete: bool, n_out: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Fit on `rows` (a scipy sparse matrix, a row per example) beside the dense `side` columns; returns
    (coef: n_out x columns, intercept: n_out, what was chosen)."""
    try:
        import warnings

        from scipy import sparse
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
        from sklearn.model_selection import StratifiedKFold
    except ImportError:
        raise UserError("model.solver: lbfgs is solved by scikit-learn: pip install 'sw2[data]'") from None
    x = sparse.hstack([rows, side.numpy()]).tocsr() if side is not None and side.shape[1] else rows
    y = target.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the weakest penalties on separable text
        if not discrete:
            fit = RidgeCV(alphas=[1 / c for c in CS]).fit(x, y)
            coef = torch.as_tensor(np.atleast_2d(fit.coef_), dtype=torch.float32)
            return coef, torch.as_tensor(np.atleast_1d(fit.intercept_), dtype=torch.float32), {"alpha": fit.alpha_}
        counts = np.bincount(y, minlength=n_out)
        if (counts > 0).sum() < 2:  # one class only: it is always the answer
            intercept = torch.where(torch.from_numpy(counts) > 0, 0.0, -30.0)
            return torch.zeros(n_out, x.shape[1]), intercept, {"C": None, "folds": 0}
        folds = min(FOLDS, int(counts[counts > 0].min()))
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            fit = LogisticRegressionCV(
                Cs=list(CS), cv=cv, scoring="neg_log_loss", max_iter=MAX_ITER, random_state=seed, **_quiet()
            ).fit(x, y)
            chose: dict[str, Any] = {"C": float(np.ravel(fit.C_)[0]), "folds": folds}
        else:  # a class with one training row: no folds to choose on
            fit = LogisticRegression(C=CS[2], max_iter=MAX_ITER).fit(x, y)
            chose = {"C": CS[2], "folds": 0}
    coef = np.zeros((n_out, x.shape[1]), np.float32)
    intercept = np.full(n_out, -30.0, np.float32)  # a class absent from the training rows: never predicted
    if len(fit.classes_) == 2:  # one score for the second class: the two logits -s/2, +s/2 give its softmax
        coef[fit.classes_] = np.stack([-fit.coef_[0] / 2, fit.coef_[0] / 2])
        intercept[fit.classes_] = [-fit.intercept_[0] / 2, fit.intercept_[0] / 2]
    else:
        coef[fit.classes_], intercept[fit.classes_] = fit.coef_, fit.intercept_
    return torch.from_numpy(coef), torch.from_numpy(intercept), chose


def _quiet() -> dict[str, Any]:
    """scikit-learn 1.9's forward-compatible arguments of LogisticRegressionCV (older ones lack them and do not
    warn): a plain L2 penalty and the fitted attributes of 1.10."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    if "use_legacy_attributes" not in inspect.signature(LogisticRegressionCV).parameters:
        return {}
    return {"l1_ratios": (0.0,), "use_legacy_attributes": False}
