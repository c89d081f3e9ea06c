"""A request's body -> the bundle's examples. Every problem is a `BadRequest` (a 4xx naming it), never a
traceback: the server answers what the client must change. Values echoed in a message are cut short.

    {"rows": [{"col": value, ...}, ...]}        table rows (a text model's rows hold its text column)
    {"texts": ["...", ...]}                      a text model with one text column
    {"images": ["<base64 PNG/JPEG/...>", ...]}   an image model (multipart uploads: the `files` field)
    {"observations": [[...], ...]}               a policy (task control): its environment's observations

The work is bounded: JSON nested too deeply, NaN/Infinity literals and numbers outside float32 (what the
network computes in) are refused, and images have a pixel budget scaled to the model's input (below).
These functions run in a worker thread (sw2.serve.app) and stop at the request's `deadline`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from sw2.data.dates import MAX_DATE_CHARS
from sw2.data.encode import Encoder
from sw2.data.examples import Examples
from sw2.data.images import to_array
from sw2.engine.generate import MIN_TEMPERATURE

KEYS = ("rows", "texts", "images", "observations")
FLOAT32_MAX = float(np.finfo(np.float32).max)
ECHO = 100  # characters of a client's value a message repeats
# Pixels, counted as decoded (a JPEG is decoded at the smallest DCT scale still 4x the model's input: draft):
MAX_PIXELS = 4096 * 4096  # one image, whatever the model
MIN_CAP = 2048 * 2048  # one image may have at least this many, however small the model
PER_MODEL_PIXEL = 256  # ... and up to this many times the model's input (a 224 x 224 model: 12.8 M)
REQUEST_PER_IMAGE = 64  # a request: 4 images at the cap, or this many model inputs per image sent


class BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Parsed:
    """A request's examples and what the request log may see of it (sw2.serve.request_log masks it)."""

    examples: Examples
    logged: dict[str, Any] = field(default_factory=dict)


def short(value: Any) -> str:
    """`value` as a message shows it: repr, at most ECHO characters."""
    text = repr(value)
    return text if len(text) <= ECHO else text[: ECHO - 1] + "…"


def in_time(deadline: float | None) -> None:
    """A 504 once `deadline` (time.monotonic()) has passed: the worker thread stops working on the request."""
    if deadline is not None and time.monotonic() > deadline:
        raise BadRequest(504, "the request took longer than the server's --timeout-s; send less at once")


def describe(encoder: Encoder) -> dict[str, Any]:
    """The model's inputs as a client sends them (GET /v1/model, the web page)."""
    if hasattr(encoder, "observations"):  # a policy's environment (sw2.data.envs.EnvSetup)
        return encoder.describe()
    if encoder.image_shape is not None:
        c, h, w = encoder.image_shape
        return {"kind": "image", "channels": c, "height": h, "width": w, "send": "images (base64) or files"}
    columns = {c["name"]: "date" if "date" in c else "number" for c in encoder.numeric}  # a date: its text
    columns |= {c["name"]: "category" for c in encoder.categories}
    columns |= {name: "text" for name in encoder.text_columns}
    kind = "text" if encoder.text_columns and len(columns) == len(encoder.text_columns) else "table"
    return {"kind": kind, "columns": columns, "send": "texts" if kind == "text" and len(columns) == 1 else "rows"}


def parse_json(body: bytes) -> Any:
    """Strict JSON: a 400 for malformed text, NaN/Infinity literals, nesting too deep or numbers too long."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest(400, "malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, f"malformed JSON: {str(err)[:200]}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; send a finite number or null")


def from_json(encoder: Encoder, body: bytes, max_rows: int, deadline: float | None = None) -> Parsed:
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequest(422, f"the body must be a JSON object with one of {', '.join(KEYS)}")
    given = [k for k in KEYS if k in payload]
    other = [k for k in payload if k not in KEYS]
    if len(given) != 1 or other:
        got = ", ".join(short(k) for k in list(payload)[:5]) or "none"
        raise BadRequest(422, f"give exactly one of {', '.join(KEYS)} (got {got})")
    items = payload[given[0]]
    if not isinstance(items, list) or not items:
        raise BadRequest(422, f"{given[0]}: must be a non-empty list")
    if len(items) > max_rows:
        raise BadRequest(413, f"{given[0]}: {len(items)} examples; at most {max_rows} in one request")
    if given[0] == "observations" or hasattr(encoder, "observations"):
        if given[0] != "observations" or not hasattr(encoder, "observations"):
            what = '{"observations": [[...], ...]}' if hasattr(encoder, "observations") else "rows, texts or images"
            raise BadRequest(422, f"{given[0]}: this model takes {what}")
        try:
            return Parsed(encoder.examples(encoder.observations(items)), {"observations": items})
        except ValueError as err:
            raise BadRequest(422, str(err)) from None
    if given[0] == "images":
        return images(encoder, [_base64(i, x) for i, x in enumerate(items)], deadline)
    if encoder.image_shape is not None:
        raise BadRequest(422, f'{given[0]}: this model takes images; send {{"images": [base64, ...]}}')
    if given[0] == "texts":
        if len(encoder.text_columns) != 1 or encoder.numeric or encoder.categories:
            raise BadRequest(422, 'texts: this model takes rows of columns; send {"rows": [...]}')
        items = [{encoder.text_columns[0]: t} for t in items]
    return Parsed(rows(encoder, items, deadline), {given[0]: payload[given[0]]})


def rows(encoder: Encoder, items: list[Any], deadline: float | None = None) -> Examples:
    """Rows checked against the model's columns: all present, no others, each value of its kind."""
    kinds = describe(encoder)["columns"]
    for i, row in enumerate(items):
        if i % 100 == 0:
            in_time(deadline)
        if not isinstance(row, dict):
            raise BadRequest(422, f"rows[{i}]: must be an object of column: value")
        missing = [c for c in kinds if c not in row]
        extra = [c for c in row if c not in kinds]
        if missing:
            raise BadRequest(422, f"rows[{i}]: column '{missing[0]}' is missing; the model takes {', '.join(kinds)}")
        if extra:
            raise BadRequest(422, f"rows[{i}]: unknown column {short(extra[0])}; the model takes {', '.join(kinds)}")
        for name, kind in kinds.items():
            _check_value(i, name, kind, row[name])
    frame = pd.DataFrame(items, columns=list(kinds))
    for name, kind in kinds.items():
        if kind == "number":
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return Examples(target=np.zeros(len(frame)), frame=frame, ids=np.arange(len(frame)))


def _check_value(i: int, name: str, kind: str, value: Any) -> None:
    where = f"rows[{i}].{name}"
    if value is None and kind != "text":
        return  # missing: the encoder fills it as in training
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(422, f"{where}: {short(value)} is not a number (or null for missing)")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(422, f"{where}: {short(value)} is not a finite number")
        if abs(value) > FLOAT32_MAX:
            raise BadRequest(422, f"{where}: {short(value)} lies outside float32's range (±{FLOAT32_MAX:.3g}), "
                                  "which the model computes in")  # fmt: skip
    elif kind == "category":
        if not isinstance(value, str | int | float | bool):
            raise BadRequest(422, f"{where}: {type(value).__name__} is not a category value (a string or number)")
    elif not isinstance(value, str) or not value.strip():
        raise BadRequest(422, f"{where}: must be a non-empty text")
    elif kind == "date" and len(value) > MAX_DATE_CHARS:
        raise BadRequest(422, f"{where}: {len(value)} characters; a date has at most {MAX_DATE_CHARS}")


def _base64(i: int, item: Any) -> bytes:
    if not isinstance(item, str):
        raise BadRequest(422, f"images[{i}]: must be a base64 string of an image file")
    text = item.split(",", 1)[1] if item.startswith("data:") else item  # a data: URL as a browser makes it
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(422, f"images[{i}]: not valid base64") from None


def pixel_limits(model_pixels: int, n_images: int) -> tuple[int, int]:
    """(one image's, the whole request's) decoded pixels at most, for a model of `model_pixels` inputs."""
    cap = min(MAX_PIXELS, max(MIN_CAP, PER_MODEL_PIXEL * model_pixels))
    return cap, max(4 * cap, REQUEST_PER_IMAGE * model_pixels * n_images)


def images(encoder: Encoder, files: list[bytes], deadline: float | None = None) -> Parsed:
    """Image files (their bytes) resized to the model's input, as `sw2 predict` reads them, within the pixel
    budget: one image over its cap, or a request over its budget, is a 413 before more is decoded."""
    if encoder.image_shape is None:
        raise BadRequest(422, "images: this model takes rows or texts, not images")
    c, h, w = encoder.image_shape
    cap, budget = pixel_limits(h * w, len(files))
    arrays, used = [], 0
    for i, data in enumerate(files):
        in_time(deadline)
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.format == "JPEG":  # decoded at a smaller DCT scale, still 4x the model's input
                    im.draft("L" if c == 1 else "RGB", (4 * w, 4 * h))
                width, height = im.size
                if width * height > cap:
                    raise BadRequest(413, f"images[{i}]: {width} x {height} pixels; at most {cap:,} pixels for this "
                                          f"model's {h} x {w} input: send a smaller image")  # fmt: skip
                used += width * height
                if used > budget:
                    raise BadRequest(413, f"images: more than {budget:,} pixels in one request for this model's "
                                          f"{h} x {w} input; send smaller images or fewer at once")  # fmt: skip
                arrays.append(to_array(im, (h, w), c))
        except BadRequest:
            raise
        except Image.DecompressionBombError:
            raise BadRequest(413, f"images[{i}]: more than {cap:,} pixels for this model's {h} x {w} input") from None
        except Exception:  # PIL raises many kinds for bytes that are not an image, or a truncated one
            raise BadRequest(422, f"images[{i}]: not an image file PIL can decode (PNG, JPEG, ...)") from None
    logged = {"images": [{"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()[:16]} for b in files]}
    return Parsed(Examples(target=np.zeros(len(arrays)), images=np.stack(arrays), ids=np.arange(len(arrays))), logged)


MAX_TOKENS = 2000  # a generate request's new tokens
GENERATE_FIELDS = ("prompt", "tokens", "temperature", "top_k", "seed", "stream")


def generate_options(body: bytes, max_prompt_chars: int) -> dict[str, Any]:
    """A /v1/generate body as the task's `stream` options, every field checked (a 4xx naming it)."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequest(422, 'the body must be a JSON object: {"prompt": "..."}')
    extra = [k for k in payload if k not in GENERATE_FIELDS]
    if extra:
        raise BadRequest(422, f"unknown field {short(extra[0])}; give {', '.join(sorted(GENERATE_FIELDS))}")
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest(422, "prompt: must be a non-empty text")
    if len(prompt) > max_prompt_chars:
        raise BadRequest(413, f"prompt: {len(prompt):,} characters; at most {max_prompt_chars:,} (--max-prompt-chars)")
    tokens, temperature = payload.get("tokens", 200), payload.get("temperature", 1.0)
    top_k, seed, stream = payload.get("top_k"), payload.get("seed", 0), payload.get("stream", False)
    if not _whole(tokens) or not 1 <= tokens <= MAX_TOKENS:
        raise BadRequest(422, f"tokens: give a whole number from 1 to {MAX_TOKENS}")
    number = isinstance(temperature, int | float) and not isinstance(temperature, bool)
    if not number or not math.isfinite(temperature) or (temperature != 0 and not temperature >= MIN_TEMPERATURE):
        raise BadRequest(422, f"temperature: give a finite number >= {MIN_TEMPERATURE} (or 0: greedy)")
    if top_k is not None and (not _whole(top_k) or top_k < 1):
        raise BadRequest(422, "top_k: give a whole number >= 1, or leave it out")
    if not _whole(seed) or not 0 <= seed < 2**64:
        raise BadRequest(422, "seed: give a whole number from 0 to 2**64 - 1")
    if not isinstance(stream, bool):
        raise BadRequest(422, "stream: give true or false")
    return {"prompt": prompt, "tokens": tokens, "temperature": float(temperature), "top_k": top_k, "seed": seed,
            "stream": stream}  # fmt: skip


SAMPLE_FIELDS = {"n", "seed", "class", "format"}


def sample_options(body: bytes, max_samples: int) -> dict[str, Any]:
    """A /v1/sample body as the task's `sample` options, every field checked (a 4xx naming it)."""
    payload = parse_json(body) if body.strip() else {}
    if not isinstance(payload, dict):
        raise BadRequest(422, 'the body must be a JSON object: {"n": 16}')
    extra = [k for k in payload if k not in SAMPLE_FIELDS]
    if extra:
        raise BadRequest(422, f"unknown field {short(extra[0])}; give {', '.join(sorted(SAMPLE_FIELDS))}")
    n, seed, fmt, cls = payload.get("n", 16), payload.get("seed", 0), payload.get("format", "png"), payload.get("class")
    if not _whole(n) or not 1 <= n <= max_samples:
        raise BadRequest(422, f"n: give a whole number of images from 1 to {max_samples} (--max-samples)")
    if not _whole(seed) or not 0 <= seed < 2**63:
        raise BadRequest(422, "seed: give a whole number from 0 to 2**63 - 1")
    if fmt not in ("png", "json"):
        raise BadRequest(422, f"format: {short(str(fmt))}; give png (one grid) or json (base64 PNGs)")
    ok = lambda c: isinstance(c, str) and len(c) <= 200 or _whole(c)  # noqa: E731
    if cls is not None and not (ok(cls) or isinstance(cls, list) and len(cls) == n and all(ok(c) for c in cls)):
        raise BadRequest(422, "class: give a class (name or index), or a list of one per image")
    return {"n": n, "seed": seed, "format": fmt, "class": cls}


def png_grid(images: Any) -> bytes:
    """uint8 images (n x C x H x W) as one PNG mosaic, 8 a row."""
    from sw2.data.images import grid_png

    return grid_png(images.numpy(), cols=8)


def png_list(images: Any) -> list[str]:
    """uint8 images (n x C x H x W) as base64 PNG files, one each."""
    import base64

    from sw2.data.images import png_file

    return [base64.b64encode(png_file(img)).decode() for img in images.numpy()]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
