"""The recipe checks on the model (Karpathy's "A Recipe for Training Neural Networks"):

- loss at init: measured against what a prior-initialised output predicts (the label entropy, or the
  target variance for regression);
- overfit one batch: the spec's optimizer and lr must drive 16 examples to near the lowest loss they allow;
- input-independent baseline: a short training on the real inputs must reach a val loss clearly below the
  same training on zeroed inputs (otherwise the inputs carry no signal about the labels).

A FAIL stops training, so it is kept for what is surely broken (a non-finite or diverging loss, shuffled
labels, constant inputs); what a legal setting on clean data can cause is a WARN that says what to change.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from sw2.data.corpus import Prepared as TextPrepared
from sw2.data.dataset import Prepared, TensorSet
from sw2.engine import fit
from sw2.engine.context import Context
from sw2.engine.hardware import device_for
from sw2.engine.length import plan
from sw2.engine.step import SupervisedStep
from sw2.preflight.probe import linear_probe
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


def nonfinite_cause(p: Data, batch: TensorSet) -> str:
    """What makes a loss non-finite, for the message: input columns (or inputs) or a target holding NaN/inf in
    `batch`, and the columns whose +-inf loading made missing values; else the scale of the inputs."""
    names = [c["name"] for c in p.encoder.numeric] if isinstance(p, Prepared) else []
    bad = []
    for key, v in batch.inputs.items():
        if not v.is_floating_point() or torch.isfinite(v).all():
            continue
        if key == "num" and v.dim() == 2 and v.shape[1] == len(names):  # the encoder's numeric columns, in order
            bad += [f"'{names[i]}'" for i in torch.nonzero(~torch.isfinite(v).all(0)).flatten().tolist()]
        else:
            bad.append(f"'{key}'")
    if batch.target.is_floating_point() and not torch.isfinite(batch.target).all():
        bad.append("the target")
    inf = p.report.get("nonfinite_values", {}) if isinstance(p, Prepared) else {}
    said = f"; +-inf was made missing in {', '.join(map(repr, inf))}" if inf else ""
    if bad:
        return f"non-finite values (NaN or inf) in {', '.join(bad)} after encoding{said}: fix or drop them"
    return f"the inputs are finite{said}, so their scale overflows the model: check the input scaling"


def loss_at_init(spec: Spec, p: Data, task: Task, model: nn.Module | None = None) -> Verdict:
    """The untrained model's loss (`model`, or the task's fresh one) against what its prior-initialised output
    should give."""
    model = model or task.trainable(spec, p).model
    batch = subset(p.train, min(scaled(p.train, 512), len(p.train)), spec.train.seed)
    model.train()  # batch statistics, as in the first training step
    bs = spec.train.batch_size
    with torch.no_grad():  # in training-sized chunks: one 512-row forward pass is slow for a big model
        chunks = torch.arange(len(batch)).tensor_split(math.ceil(len(batch) / bs))  # even: never a 1-row batch
        out = torch.cat([model({k: v[c] for k, v in batch.inputs.items()}) for c in chunks])
        measured = float(task.loss(out, batch.target))
    expected, why = task.init_loss(p)
    ratio = measured / max(expected, 1e-6)
    msg = f"measured {measured:.3f}, expected {expected:.3f} ({why})"
    if not math.isfinite(measured):
        return Verdict("loss at init", "FAIL", f"{msg}; {nonfinite_cause(p, batch)}")
    if ratio > 3:
        return Verdict("loss at init", "FAIL", msg + "; check the input scaling and the output layer's init")
    if ratio > 1.5:
        return Verdict("loss at init", "WARN", msg + "; the untrained model is over-confident")
    return Verdict("loss at init", "PASS", msg)


def lowest_reachable(task: Task, batch: TensorSet, out: torch.Tensor) -> tuple[float, int]:
    """(The lowest loss any model can reach on `batch`, its number of distinct inputs): 0 where every input
    differs; else the loss of a free output per distinct input, as identical inputs with different targets
    cannot all be fitted. `out` is a model output on the batch, for its shape."""
    rows = [
        torch.cat([v[i].flatten().float() for v in batch.inputs.values()]).numpy().tobytes() for i in range(len(batch))
    ]
    groups, distinct = pd.factorize(pd.Series(rows))
    if len(distinct) == len(batch):
        return 0.0, len(distinct)
    table = torch.zeros((len(distinct), *out.shape[1:]), requires_grad=True)
    index, opt = torch.from_numpy(groups), torch.optim.Adam([table], lr=0.1)
    for _ in range(300):
        loss = task.loss(table[index], batch.target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(task.loss(table[index], batch.target).detach()), len(distinct)


class _WarmStep(SupervisedStep):
    """The engine's step at the spec's lr, warmed up linearly over its first `warm` calls (no schedule), without
    label smoothing (the lowest reachable loss is that of the hard targets)."""

    def __init__(self, model: nn.Module, task: Task, spec: Spec, warm: int = 30) -> None:
        super().__init__(model, task, spec.train.model_copy(update={"label_smoothing": 0.0}))
        self.calls, self.warm = 0, warm

    def set_lr(self, progress: float) -> None:
        self.calls += 1
        assert isinstance(self.train_spec.lr, float)
        for g in self.optimizer.param_groups:
            g["lr"] = self.train_spec.lr * min(1.0, self.calls / self.warm) * g["lr_scale"]


def overfit_one_batch(
    spec: Spec,
    p: Data,
    task: Task,
    size: int = 16,
    steps: int = 300,
    longest: int = 1000,
    small: int = 100_000,
    seconds: float = 10.0,
) -> Verdict:
    """The spec's optimizer and lr must drive `size` examples to within 5% of the lowest loss they allow
    (`lowest_reachable`), counted from the loss at init, in `steps` steps of the engine's step on the spec's
    device; a model of at most `small` parameters (one that fits slowly, at a low cost per step) gets up to
    `longest` while its loss still falls and the check has taken under `seconds`. FAIL only for what is surely
    broken: a diverging or non-finite loss, or a batch whose examples all have the same input; not fitted is a
    WARN saying what to change."""
    model = task.trainable(spec, p).model
    longest = longest if sum(w.numel() for w in model.parameters()) <= small else steps
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    batch = subset(p.train, min(scaled(p.train, size), len(p.train)), spec.train.seed)
    ctx, step = Context(device_for(spec.train)), _WarmStep(model, task, spec)
    model.to(ctx.device)
    with torch.no_grad():  # the loss at init and the lowest the batch allows
        out = model({k: v.to(ctx.device) for k, v in batch.inputs.items()}).cpu()
    first, (floor, distinct) = task.loss(out, batch.target).item(), lowest_reachable(task, batch, out)
    if distinct == 1 and floor > 0.5 * first:
        return Verdict(
            "overfit one batch",
            "FAIL",
            f"all {len(batch)} examples have the same input but different targets (lowest reachable loss "
            f"{floor:.3f}): nothing tells them apart; are the inputs constant or zeroed?",
        )
    bar, every, losses, t0 = floor + 0.05 * (first - floor), torch.arange(len(batch)), [], time.perf_counter()
    model.train()
    for i in range(longest):
        last = step.train_on(batch, every, ctx).item()  # the loss before this step's update
        losses.append(last)
        if not math.isfinite(last) or last > 1e4 * max(first, 1e-3):
            return Verdict(
                "overfit one batch", "FAIL", f"the loss diverged at step {i} with lr {spec.train.lr:g}; lower train.lr"
            )
        if last <= bar:
            msg = f"{len(batch)} examples fitted: loss {first:.3f} -> {last:.4f} in {i + 1} steps"
            return Verdict("overfit one batch", "PASS", msg)
        falling = len(losses) < 100 or last - floor < 0.9 * (losses[-100] - floor)
        if i + 1 >= steps and (not falling or time.perf_counter() - t0 > seconds):
            break
    return _not_fitted(spec, len(batch), losses, first, floor, bar)


def _not_fitted(spec: Spec, n: int, losses: list[float], first: float, floor: float, bar: float) -> Verdict:
    """The verdict on a batch not fitted: FAIL where the loss rose, else a WARN saying what to change."""
    last = losses[-1]
    seen = f"{n} examples not fitted in {len(losses)} steps (loss {first:.3f} -> {last:.3f}, bar {bar:.3f})"
    if last > 1.5 * first:
        return Verdict("overfit one batch", "FAIL", f"{seen}: the loss rose with lr {spec.train.lr:g}; lower train.lr")
    if last - floor <= 0.5 * (first - floor):
        why = "the model learns them, slowly: fine for a small or frozen model; if training underfits, raise "
        why += f"train.lr ({spec.train.lr:g}) or widen the model"
    else:
        why = f"barely learned: try another train.lr ({spec.train.lr:g}), widen the model, or check that it sees its "
        why += "inputs"
    return Verdict("overfit one batch", "WARN", f"{seen}; {why}")


def zeroed(ts: TensorSet) -> TensorSet:
    return TensorSet({k: torch.zeros_like(v) for k, v in ts.inputs.items()}, ts.target, ts.ids)


@dataclass
class ShortRun:
    """What a short training run saw: its validations' losses and its last epoch's mean training loss."""

    val_losses: list[float]
    train_loss: float

    @property
    def best(self) -> float:
        return min(self.val_losses)


def inputs_matter(spec: Spec, p: Data, task: Task, steps: tuple[int, int] = (30, 150)) -> Verdict:
    """A short training on the real inputs must reach a val loss clearly below the same training on zeroed
    inputs: the best of several validations per run, as a model that learns fast may overfit before the run
    ends. A slow starter (text models, small lrs) gets one longer try on the real inputs before a verdict, if
    that try fits the pre-flight's budget (`budget_seconds`); the zeroed-input model has learned all it can
    (the label prior) within the first, short try. FAIL only where the real-input model fits its training rows
    yet does no better than zeroed inputs on held-out ones, and a linear probe (`linear_probe`) finds no signal
    either (shuffled labels); else a WARN. Without a validation split, training rows are held out for this
    check only."""
    pool, held, where = _held_out(spec, p, task, steps[-1])
    if not len(held):
        return Verdict("input-independent baseline", "WARN", "too few training rows to hold any out for it")
    blind = _short_run(spec, p, task, steps[0], zeroed, pool, held)
    t0 = time.perf_counter()
    for n in steps:
        real = _short_run(spec, p, task, n, lambda ts: ts, pool, held)
        msg = (
            f"best {where} of {len(real.val_losses)} validations in {n} steps: {real.best:.3f} on the real inputs, "
            f"{blind.best:.3f} on zeroed inputs"
        )
        if real.best < 0.9 * blind.best:
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
    return _no_gain(msg, real, blind, pool, held)


def _held_out(spec: Spec, p: Data, task: Task, steps: int) -> tuple[TensorSet, TensorSet, str]:
    """(training rows, held-out rows, what the loss is on): the val split, or without one, training rows held
    out for this check only (where the task's examples are overlapping windows of one sequence, a language
    model's, the end is held out and the start trains)."""
    pool = p.train
    if len(p.val):
        return pool, p.val, "val loss"
    n_held = min(scaled(pool, 512), len(pool) // 5)
    if task.windows:
        order = np.roll(np.arange(len(pool)), n_held)
    else:
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(spec.train.seed)).numpy()
    where = f"loss on {n_held} held-out training rows (no validation split)"
    return pool.take(order[n_held : n_held + steps * scaled(pool, 128)]), pool.take(order[:n_held]), where


def _no_gain(msg: str, real: Any, blind: Any, pool: TensorSet, held: TensorSet) -> Verdict:
    """The verdict where the real inputs did not clearly beat zeroed ones: a slow start, memorising without
    generalising, or no signal at all (FAIL only when a linear probe finds none either)."""
    if real.best < 0.97 * blind.best:  # the best of several noisy validations: a little below is no signal
        return Verdict("input-independent baseline", "WARN", msg + "; barely better: weak signal or a slow start")
    fits = f"training loss {real.train_loss:.3f} on the real inputs, {blind.train_loss:.3f} on zeroed ones"
    probe = linear_probe(pool, held)  # a slow start, or memorised without generalising, or no signal at all?
    if real.train_loss >= 0.9 * blind.train_loss and (probe is None or probe.found):
        return Verdict(
            "input-independent baseline",
            "WARN",
            f"{msg}; {fits}: the model has not learned yet (a slow start: raise train.lr), or the inputs carry "
            "no signal about the target",
        )
    if probe is not None and probe.found:
        return Verdict(
            "input-independent baseline",
            "WARN",
            f"{msg}; {fits}: the model memorises its training rows without generalising, yet a linear probe on "
            f"the same inputs finds signal ({probe}): give it more data or regularisation (train.weight_decay, "
            "train.dropout), or use a simpler model",
        )
    nor = f", nor does a linear probe ({probe})" if probe is not None else ""
    return Verdict(
        "input-independent baseline",
        "FAIL",
        f"{msg}; {fits}: the model does no better than zeroed inputs on held-out rows{nor}, so the inputs "
        "carry no signal about the target: labels shuffled or misaligned with the inputs?",
    )


def budget_seconds(spec: Spec, p: Data, per_step: float, share: float = 0.1, floor: float = 60.0) -> float:
    """What an optional, longer check may cost: `share` of the planned training (its steps at `per_step`
    seconds each, or its time budget if shorter), and never less than `floor` seconds."""
    length = plan(spec.train, len(p.train))
    steps = length.epochs * math.ceil(len(p.train) / spec.train.batch_size)
    planned = min(steps * per_step, length.time_budget or math.inf)
    return max(floor, share * planned)


def short_spec(spec: Spec, **train: Any) -> Spec:
    """`spec` for a check's short training: `train` set (epochs, batch size, ...), and no time budget, early
    stopping, lookahead or data pruning, which only make sense over a whole run."""
    update = {"time_budget": None, "early_stopping": None, "lookahead": False, "prune_easy": 0.0, **train}
    return spec.model_copy(update={"train": spec.train.model_copy(update=update)})


def _short_run(
    spec: Spec, p: Data, task: Task, steps: int, inputs_of: Any, pool: TensorSet, held: TensorSet, every: int = 5
) -> ShortRun:
    """`steps` steps of training on `inputs_of` (the data, or zeroed) rows of `pool`, validated on `held`
    after each epoch: an epoch is at most `steps / every` steps, so that there are at least `every`."""
    bs = min(spec.train.batch_size, scaled(pool, 128), len(pool))
    train = subset(pool, min(max(bs, steps * bs // every), len(pool)), spec.train.seed)
    val = subset(held, min(scaled(held, 512), len(held)), 0)
    short = short_spec(spec, epochs=steps * bs / len(train), batch_size=bs)
    trainable = task.trainable(short, p, train=inputs_of(train), val=inputs_of(val), init_on=p.train)
    history = fit(trainable, short, verbose=False).history
    return ShortRun([row["val_loss"] for row in history], history[-1]["train_loss"])


def inputs_matter_verdict(spec: Spec, p: Data, task: Task) -> Verdict:
    return inputs_matter(spec, p, task, (30, 60) if task.windows else (30, 150))  # windows: a longer try costs more


def beats_baseline(task: Task, scores: dict[str, Any]) -> Verdict:
    """After training: the model must beat the task's dumb baseline (majority class, train mean, unigram)."""
    ok, msg = task.beats_baseline(scores)
    return Verdict(
        "beats dumb baseline", "PASS" if ok else "FAIL", msg + ("" if ok else "; the model learned nothing useful")
    )
