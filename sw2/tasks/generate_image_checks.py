"""generate_image's own pre-flight checks, in place of the supervised ones (which SKIP with the reason): a
short run of the task's own step on its own stream (the spec's lrs, fp32), then
- adversarial balance (GAN): the discriminator's loss collapsing towards 0 within the first steps means it
  wins outright and the generator learns nothing (lower its lr, smooth the real labels, spectral norm);
- generator output: most generated pixels at ±1 (tanh saturated) (lower the generator's lr);
- noise prediction (diffusion): the loss falls from the first steps (a net that cannot fit the noise at all
  is misconfigured).
One class taking most samples shows only once training is under way: each epoch's history row has the
judge's `top_class_share`, and the scores name the epochs where it passed one half (`collapsed_epochs`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch

from sw2.engine.context import Context
from sw2.engine.hardware import device_for
from sw2.engine.trainable import Batch
from sw2.preflight.verdict import Verdict

STEPS = 40
COLLAPSED_LOSS = 0.05  # a discriminator loss below this after STEPS steps: it wins outright
SATURATED = 0.5  # a share of generated pixels within 0.02 of ±1


def short_run(task: Any, spec: Any, data: Any) -> list[Verdict]:
    """The checks above, from STEPS steps of the task's trainable."""
    from sw2.tasks.image_steps import GANStep

    cfg = spec.train.model_copy(update={"schedule": "constant", "warmup": 0.0, "precision": "fp32"})
    trainable = task.trainable(spec.model_copy(update={"train": cfg}), data)
    device = device_for(spec.train)
    for module in trainable.modules.values():
        module.to(device).train()
    stream, step = trainable.batches, trainable.step
    stream.to(device)
    step.to(device)
    gen = torch.Generator().manual_seed(spec.train.seed)
    ctx = Context(device, batch_size=stream.batch_size, examples=stream.examples, total_steps=STEPS, generator=gen)

    def batches() -> Iterator[Batch]:
        for ctx.epoch in range(1, STEPS + 1):
            yield from stream.epoch(ctx)

    losses = []
    for batch, target, idx in itertools.islice(batches(), STEPS):
        losses.append(float(step(batch, target, idx, ctx)))
        ctx.step += 1
    verdicts = []
    o, g = step.o, trainable.modules["generator"]
    n = 64
    noise = torch.randn(n, g.latent, generator=gen) if isinstance(step, GANStep) else None
    y = torch.arange(n) % len(data.encoder.classes) if o.conditional else None
    if isinstance(step, GANStep):
        last = step.epoch_losses()
        d_loss = last["d_loss"]
        if d_loss < COLLAPSED_LOSS:
            msg = (f"the discriminator's loss fell to {d_loss:.4f} in {len(losses)} steps: it wins outright and the "
                   "generator learns nothing; lower model.discriminator_lr, set label_smoothing: 0.1 or spectral_norm: "
                   "true")  # fmt: skip
            verdicts.append(Verdict("adversarial balance", "WARN", msg))
        else:
            msg = f"discriminator loss {d_loss:.3f}, generator loss {last['g_loss']:.3f} after {len(losses)} steps"
            verdicts.append(Verdict("adversarial balance", "PASS", msg))
        g.eval()
        with torch.no_grad():
            x = g(noise.to(device), None if y is None else y.to(device)).float().cpu()
        g.train()
        share = float((x.abs() > 0.98).float().mean())
        status = "WARN" if share > SATURATED else "PASS"
        msg = f"{share:.0%} of generated pixels at ±1 after {len(losses)} steps" + (
            " (tanh saturated): lower model.generator_lr" if status == "WARN" else ""
        )
        verdicts.append(Verdict("generator output", status, msg))
    else:
        first, last_ = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        status = "PASS" if last_ < first else "WARN"
        msg = f"noise-prediction loss {first:.4f} -> {last_:.4f} over {len(losses)} steps" + (
            "" if status == "PASS" else ": it does not fall; check train.lr and the optimizer"
        )
        verdicts.append(Verdict("noise prediction", status, msg))
        g.eval()
        with torch.no_grad():
            shape = list(data.encoder.image_shape)
            g.sample(torch.randn(n, *shape, generator=gen).to(device), None if y is None else y.to(device), 10)
        g.train()
    return verdicts
