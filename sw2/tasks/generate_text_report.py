"""generate_text's sections of report.html: the sample the model wrote, and where its loss goes: by
position in the context window and by token (the tokens that cost the most nats in all)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sw2.engine.predict import predict
from sw2.evaluation import plots
from sw2.run_report import Run, e, image, table

WINDOWS = 64  # test windows whose per-token losses the section reads


def samples(r: Run) -> str:
    path = r.b.path / "samples.txt"
    if not path.is_file():
        return '<p class="muted">no samples.txt in the bundle</p>'
    sample = r.m.get("sample", {})
    how = ", ".join(f"{k} {sample[k]}" for k in ("tokens", "temperature", "top_k", "seed") if k in sample)
    intro = f"<p>Written by the trained model after the first line of the validation text ({e(how)}).</p>"
    return intro + f"<pre>{e(path.read_text(encoding='utf-8'))}</pre>"


def token_losses(r: Run) -> str:
    """Mean nats by position in the window, and the tokens the model loses most on."""
    n = min(WINDOWS, len(r.test))
    if not n:
        return ""
    part = r.test.take(torch.linspace(0, len(r.test) - 1, n).long().unique().numpy())
    losses = torch.cat(
        [
            F.cross_entropy(
                predict(r.b.model, {k: v[i : i + 8] for k, v in part.inputs.items()}).float().flatten(0, 1),
                part.target[i : i + 8].flatten(),
                reduction="none",
            ).view(-1, part.target.shape[1])
            for i in range(0, len(part), 8)
        ]
    )
    by_position = losses.mean(0).tolist()
    title = f"mean loss by position in the context ({len(part)} {r.scored_on} windows)"
    curve = image(lambda buf: plots.line(by_position, buf, title, "position", "nats per token"), title)
    tokens, flat = part.target.flatten(), losses.flatten()
    total = torch.zeros(int(tokens.max()) + 1).index_add_(0, tokens, flat)
    count = torch.bincount(tokens, minlength=len(total)).float()
    rows = [
        {
            "token": repr(r.b.encoder.decode([i])),
            "count": int(count[i]),
            "mean nats": float(total[i] / count[i]),
            "share of all nats": f"{float(total[i] / flat.sum()):.1%}",
        }
        for i in total.argsort(descending=True)[:15].tolist()
        if count[i] > 0
    ]
    first, last = by_position[0], sum(by_position[-8:]) / len(by_position[-8:])
    note = f"<p>First position {first:.3f} nats, last eight {last:.3f}: the gain from context.</p>"
    return curve + note + "<h3>tokens that cost the most in all</h3>" + table(rows)
