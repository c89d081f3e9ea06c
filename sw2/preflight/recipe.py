"""The recipe checks on the model (Karpathy's "A Recipe for Training Neural Networks"):

- loss at init: measured against what a prior-initialised output predicts (the label entropy, or the
  target variance for regression);
- overfit one batch: the spec's optimizer and lr must drive 16 examples to near-zero loss;
- input-independent baseline: a short training on the real inputs must end clearly below the same
  training on zeroed inputs (otherwise the inputs carry no signal about the labels).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from sw2.data.corpus import Prepared as TextPrepared
from sw2.data.corpus import unigram_counts
from sw2.data.dataset import Prepared, TensorSet
from sw2.engine import fit
from sw2.engine.optim import make_optimizer
from sw2.models import initialised
from sw2.preflight.verdict import Verdict
from sw2.spec import Spec
from sw2.tasks import Task

Data = Prepared | TextPrepared  # tables and images, or a language model's text


def subset(ts: TensorSet, n: int, seed: int) -> TensorSet:
    return ts.take(torch.randperm(len(ts), generator=torch.Generator().manual_seed(seed))[:n].numpy())


def scaled(ts: TensorSet, n: int) -> int:
    """`n` examples, or for sequences (a target per token) as many as hold about 8·n targets: a window of
    128 tokens counts as 16 examples, so the checks cost a language model about what they cost a classifier."""
    per = ts.target[0].numel() if len(ts) else 1
    return n if per <= 1 else max(2, n * 8 // max(8, per))


def expected_init_loss(p: Data, task: Task) -> tuple[float, str]:
    counts = getattr(p.encoder, "class_counts", None)
    if counts is None and p.train.target.dtype == torch.long:  # a language model: the text's unigram entropy
        tokens = unigram_counts(p.train.target, 0).float()
        prior = tokens[tokens > 0] / tokens.sum()
        return float(-(prior * prior.log()).sum()), "the unigram entropy of the training tokens"
    if counts is not None:
        prior = torch.tensor(counts, dtype=torch.float).clamp_min(1e-3)
        prior = prior / prior.sum()
        h = float(-(prior * prior.log()).sum())
        k = len(prior)
        why = f"ln {k} = {math.log(k):.3f} for balanced classes" if abs(h - math.log(k)) < 0.01 else "label entropy"
        return h, why
    y = p.train.target.float()
    return float(((y - y.mean()) ** 2).mean()), "target variance"


def loss_at_init(spec: Spec, p: Data, task: Task) -> Verdict:
    _, _, model = initialised(spec, p.encoder, p.train, task)
    batch = subset(p.train, min(scaled(p.train, 512), len(p.train)), spec.train.seed)
    model.train()  # batch statistics, as in the first training step
    bs = spec.train.batch_size
    with torch.no_grad():  # in training-sized chunks: one 512-row forward pass is slow for a big model
        chunks = torch.arange(len(batch)).tensor_split(math.ceil(len(batch) / bs))  # even: never a 1-row batch
        out = torch.cat([model({k: v[c] for k, v in batch.inputs.items()}) for c in chunks])
        measured = float(task.loss(out, batch.target))
    expected, why = expected_init_loss(p, task)
    ratio = measured / max(expected, 1e-6)
    msg = f"measured {measured:.3f}, expected {expected:.3f} ({why})"
    if not math.isfinite(measured) or ratio > 3:
        return Verdict("loss at init", "FAIL", msg + "; check the input scaling and the output layer's init")
    if ratio > 1.5:
        return Verdict("loss at init", "WARN", msg + "; the untrained model is over-confident")
    return Verdict("loss at init", "PASS", msg)


def overfit_one_batch(spec: Spec, p: Data, task: Task, size: int = 16, steps: int = 300) -> Verdict:
    _, _, model = initialised(spec, p.encoder, p.train, task)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    batch = subset(p.train, min(scaled(p.train, size), len(p.train)), spec.train.seed)
    opt = make_optimizer(model, spec.train)
    model.train()
    first = last = float("nan")
    warm = 30
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = spec.train.lr * min(1.0, (step + 1) / warm) * g["lr_scale"]
        loss = task.loss(model(batch.inputs), batch.target)
        last = loss.item()
        if step == 0:
            first = last
        if not math.isfinite(last) or last > 1e4 * max(first, 1e-3):
            return Verdict(
                "overfit one batch",
                "FAIL",
                f"the loss diverged at step {step} with lr {spec.train.lr:g}; lower train.lr",
            )
        if last < 0.05 * first:
            return Verdict(
                "overfit one batch",
                "PASS",
                f"{len(batch)} examples fitted: loss {first:.3f} -> {last:.4f} in {step + 1} steps",
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return Verdict(
        "overfit one batch",
        "FAIL",
        f"{len(batch)} examples not fitted in {steps} steps (loss {first:.3f} "
        f"-> {last:.3f}); check labels, the lr ({spec.train.lr:g}) and the model's capacity",
    )


def zeroed(ts: TensorSet) -> TensorSet:
    return TensorSet({k: torch.zeros_like(v) for k, v in ts.inputs.items()}, ts.target, ts.ids)


def inputs_matter(spec: Spec, p: Data, task: Task, steps: tuple[int, int] = (30, 150)) -> Verdict:
    """A short training on the real inputs must end clearly below the same training on zeroed inputs.
    A slow starter (text models, small lrs) gets one longer try on the real inputs before a verdict, if
    that try fits the pre-flight's budget (`budget_seconds`); the zeroed-input model has learned all it
    can (the label prior) within the first, short try. Without a validation split, training rows are held
    out for this check only."""
    pool, held, where = p.train, p.val, "val loss"
    if len(held) == 0:
        n_held = min(scaled(pool, 512), len(pool) // 5)
        if n_held == 0:
            return Verdict("input-independent baseline", "WARN", "too few training rows to hold any out for it")
        if scaled(pool, 128) < 128:  # a language model's windows overlap: hold out the text's end, train on its start
            order = np.roll(np.arange(len(pool)), n_held)
        else:
            order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(spec.train.seed)).numpy()
        held = pool.take(order[:n_held])
        pool = pool.take(order[n_held : n_held + steps[-1] * scaled(pool, 128)])
        where = f"loss on {n_held} held-out training rows (no validation split)"
    blind = _val_loss_after(spec, p, task, steps[0], zeroed, pool, held)
    t0 = time.perf_counter()
    for n in steps:
        real = _val_loss_after(spec, p, task, n, lambda ts: ts, pool, held)
        msg = f"{where} after {n} steps: {real:.3f} on the real inputs, {blind:.3f} on zeroed inputs"
        if real < 0.9 * blind:
            return Verdict("input-independent baseline", "PASS", msg)
        if n != steps[0]:
            continue
        per_step = (time.perf_counter() - t0) / n  # building the model and validating included
        budget = budget_seconds(spec, p, per_step)
        if per_step * steps[1] > budget:
            return Verdict(
                "input-independent baseline",
                "WARN",
                f"{msg}; not clearly better yet, and a {steps[1]}-step try would take about "
                f"{per_step * steps[1]:.0f} s, over the pre-flight's budget of {budget:.0f} s (10% of the "
                "planned training, at least 60 s); a slow start, or weak signal",
            )
    if real < blind:
        return Verdict("input-independent baseline", "WARN", msg + "; barely better: weak signal or a slow start")
    return Verdict(
        "input-independent baseline",
        "FAIL",
        msg + "; the inputs carry no signal about the target: labels shuffled or misaligned with the inputs?",
    )


def budget_seconds(spec: Spec, p: Data, per_step: float, share: float = 0.1, floor: float = 60.0) -> float:
    """What an optional, longer check may cost: `share` of the planned training (its steps at `per_step`
    seconds each, or its time budget if shorter), and never less than `floor` seconds."""
    steps = spec.train.epochs * math.ceil(len(p.train) / spec.train.batch_size)
    planned = min(steps * per_step, spec.train.time_budget or math.inf)
    return max(floor, share * planned)


def _val_loss_after(
    spec: Spec, p: Data, task: Task, steps: int, inputs_of: Any, pool: TensorSet, held: TensorSet
) -> float:
    """The loss on `held` after `steps` steps of training on `inputs_of` (the data, or zeroed) rows of `pool`."""
    bs = min(spec.train.batch_size, scaled(pool, 128), len(pool))
    # one pass over steps x bs examples where there are that many (one validation), else several epochs
    train, val = (
        subset(pool, min(steps * bs, len(pool)), spec.train.seed),
        subset(held, min(scaled(held, 512), len(held)), 0),
    )
    update = {"epochs": steps * bs / len(train), "batch_size": bs, "time_budget": None, "early_stopping": None}
    short = spec.model_copy(
        update={"train": spec.train.model_copy(update={**update, "lookahead": False, "prune_easy": 0.0})}
    )
    _, _, model = initialised(short, p.encoder, p.train, task)
    return fit(model, task, inputs_of(train), inputs_of(val), short, verbose=False).history[-1]["val_loss"]


def recipe_verdicts(spec: Spec, p: Data, task: Task) -> list[Verdict]:
    sequences = scaled(p.train, 128) < 128  # a target per token: a longer second try costs too much
    tries = (30, 60) if sequences else (30, 150)
    return [loss_at_init(spec, p, task), overfit_one_batch(spec, p, task), inputs_matter(spec, p, task, tries)]


def beats_baseline(scores: dict[str, Any]) -> Verdict:
    """After training: the model must beat the dumb baseline (majority class, or the train mean)."""
    base = scores["baseline"]
    if "accuracy" in scores:
        ok = scores["accuracy"] > base["accuracy"] and scores["log_loss"] < base["log_loss"]
        msg = f"accuracy {scores['accuracy']:.4f} vs {base['accuracy']:.4f}, log-loss {scores['log_loss']:.4f} "
        msg += f"vs {base['log_loss']:.4f} ({base['name']})"
    else:
        ok = scores["rmse"] < base["rmse"]
        msg = f"RMSE {scores['rmse']:.4g} vs {base['rmse']:.4g}, R² {scores['r2']:.4f} vs {base['r2']:.4f}"
        msg += f" ({base['name']})"
    return Verdict(
        "beats dumb baseline", "PASS" if ok else "FAIL", msg + ("" if ok else "; the model learned nothing useful")
    )
