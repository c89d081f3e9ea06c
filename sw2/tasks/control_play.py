"""Watching a policy: episodes rendered as rgb_array frames and written as an animated GIF (Pillow), for
`sw2 play` and the short GIF a bundle's report shows."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sw2.data.envs import MAX_EPISODE_STEPS, EnvSetup, make
from sw2.errors import UserError
from sw2.files import write_file

FPS = 30
MAX_FRAMES = 1500  # frames one GIF holds (50 s; all episodes); later steps still count in the returns
MAX_STEPS = 10_000  # an episode's steps where the environment sets no limit
REPORT_FRAMES = 150  # the report's GIF: the first this many frames of one episode
WIDTH = 320  # pixels: frames are scaled down to this width


def episodes(
    setup: EnvSetup, act: Callable[[np.ndarray], np.ndarray], n: int, seed: int, frames: int = 0
) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """`n` deterministic episodes one after the other (seeds seed, seed + 1, ...): each one's return and
    length, and up to `frames` rendered frames in all, each scaled to WIDTH and 64 colours as it is taken."""
    if frames:  # pygame draws off-screen: no display, no sound device (SDL would complain of both)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = make(setup, render_mode="rgb_array" if frames else None)
    shots: list[Image.Image] = []
    rows = []
    limit = min(setup.max_episode_steps or MAX_STEPS, MAX_EPISODE_STEPS)
    try:
        for k in range(n):
            obs, _ = env.reset(seed=seed + k)
            total, length = 0.0, 0
            while True:
                if len(shots) < frames:
                    shots.append(_small(_frame(env)))
                obs, reward, term, trunc, _ = env.step(act(np.asarray(obs)[None])[0])
                total, length = total + float(reward), length + 1
                if term or trunc or length >= limit:
                    break
            rows.append({"episode": k + 1, "seed": seed + k, "return": total, "length": length})
    finally:
        env.close()
    return rows, shots


def _frame(env: Any) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as err:  # a renderer's package (pygame) missing, or no display it can use
        raise UserError(f"{env.spec.id if env.spec else 'the environment'} does not render: {err}; "
                        "pip install 'sw2[rl]' (pygame)") from None  # fmt: skip
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise UserError("the environment renders no rgb_array frames; it cannot be shown as a GIF")
    return frame


def _small(frame: np.ndarray) -> Image.Image:
    img = Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8))
    if img.width > WIDTH:
        img = img.resize((WIDTH, max(1, round(img.height * WIDTH / img.width))), Image.Resampling.BILINEAR)
    return img.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)


def gif_bytes(images: list[Image.Image], fps: int = FPS) -> bytes:
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return buf.getvalue()


def write_gif(frames: list[Image.Image], path: Path, fps: int = FPS) -> None:
    if not frames:
        raise UserError(f"{path}: no frames to write")
    write_file(path, gif_bytes(frames, fps))
