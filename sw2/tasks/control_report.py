"""control's sections of report.html: the returns beside a random policy's, an episode as a GIF, and the return
curves against updates, environment steps and wall time."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from sw2.run_report import Run, e, image, table


def returns(r: Run) -> str:
    rows = []
    for split in ("val", "test"):
        m = r.m.get(split) or {}
        if not m:
            continue
        base = m.get("baseline", {})
        rows.append(
            {
                "episodes": f"{split} ({m.get('episodes')})",
                "policy": "trained",
                "mean return": m.get("mean_return"),
                "std": m.get("std_return"),
                "min": m.get("min_return"),
                "max": m.get("max_return"),
                "mean length": m.get("mean_length"),
            }
        )
        rows.append({"episodes": f"{split} ({base.get('episodes')})", "policy": "random",
                     "mean return": base.get("mean_return"), "std": base.get("std_return"),
                     "min": base.get("min_return"), "max": base.get("max_return"),
                     "mean length": base.get("mean_length")})  # fmt: skip
    test = r.m.get("test") or {}
    target = test.get("target_return")
    verdict = ("no target return (the environment sets no reward_threshold)" if target is None else
               f"{'solved' if test.get('solved') else 'not solved'}: target {_num(target)}")  # fmt: skip
    at = (r.m.get("training") or {}).get("solved_at")
    when = (f"; a judgement first reached it at epoch {_num(at.get('epoch'))}, {_num(at.get('env_steps'))} "
            f"environment steps, {_num(at.get('time'))} s" if isinstance(at, dict) else "")  # fmt: skip
    gif = r.b.path / "episode.gif"
    shown = (f'<img src="data:image/gif;base64,{base64.b64encode(gif.read_bytes()).decode()}" alt="an episode">'
             if gif.is_file() else "")  # fmt: skip
    return f"<p>Deterministic episodes from fixed seeds; {e(verdict)}{e(when)}.</p>" + table(rows) + shown


def _num(x: Any) -> str:
    """A number as the report shows it; anything else (a damaged metrics.json) as '?'."""
    return f"{x:,.4g}" if isinstance(x, int | float) and not isinstance(x, bool) else "?"


def curves(r: Run) -> str:
    file = r.b.path / "history.jsonl"
    history = [json.loads(line) for line in file.read_text().splitlines()] if file.is_file() else []
    points = [row for row in history if isinstance(row, dict) and isinstance(row.get("val_metric"), int | float)]
    if not points:
        return '<p class="muted">no epochs recorded</p>'
    out = ""
    for x_key, label in (("step", "updates"), ("env_steps", "environment steps"), ("time", "seconds")):
        xs = [row[x_key] if isinstance(row.get(x_key), int | float) else i + 1 for i, row in enumerate(points)]
        out += image(lambda buf, xs=xs, label=label: _plot(points, xs, label, buf), f"return against {label}")
    return out


def _plot(points: list[dict[str, Any]], xs: list[float], label: str, buf: io.BytesIO) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot(xs, [p["val_metric"] for p in points], marker="o", label="judged (deterministic)")
    train = [(x, p["train_return"]) for x, p in zip(xs, points) if "train_return" in p]
    if train:
        ax.plot(*zip(*train), marker=".", alpha=0.7, label="training episodes")
    ax.set_xlabel(label)
    ax.set_ylabel("mean return")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
