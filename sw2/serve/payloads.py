"""A request's body -> the bundle's examples. Every problem is a `BadRequest` (a 4xx naming it), never a
traceback: the server answers what the client must change.

    {"rows": [{"col": value, ...}, ...]}        table rows (a text model's rows hold its text column)
    {"texts": ["...", ...]}                      a text model with one text column
    {"images": ["<base64 PNG/JPEG/...>", ...]}   an image model (multipart uploads: the `files` field)
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from sw2.data.encode import Encoder
from sw2.data.examples import Examples
from sw2.data.images import decode
from sw2.errors import UserError

MAX_PIXELS = 4096 * 4096  # a larger image is refused before it is decoded (a decompression bomb)
KEYS = ("rows", "texts", "images")


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def describe(encoder: Encoder) -> dict[str, Any]:
    """The model's inputs as a client sends them (GET /v1/model, the web page)."""
    if encoder.image_shape is not None:
        c, h, w = encoder.image_shape
        return {"kind": "image", "channels": c, "height": h, "width": w, "send": "images (base64) or files"}
    columns = {c["name"]: "number" for c in encoder.numeric}
    columns |= {c["name"]: "category" for c in encoder.categories}
    columns |= {name: "text" for name in encoder.text_columns}
    kind = "text" if encoder.text_columns and len(columns) == len(encoder.text_columns) else "table"
    return {"kind": kind, "columns": columns, "send": "texts" if kind == "text" and len(columns) == 1 else "rows"}


def from_json(encoder: Encoder, body: bytes, max_rows: int) -> Examples:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, f"malformed JSON: {err}") from None
    if not isinstance(payload, dict):
        raise BadRequest(422, f"the body must be a JSON object with one of {', '.join(KEYS)}")
    given = [k for k in KEYS if k in payload]
    other = [k for k in payload if k not in KEYS]
    if len(given) != 1 or other:
        raise BadRequest(422, f"give exactly one of {', '.join(KEYS)} (got {', '.join(map(str, payload)) or 'none'})")
    items = payload[given[0]]
    if not isinstance(items, list) or not items:
        raise BadRequest(422, f"{given[0]}: must be a non-empty list")
    if len(items) > max_rows:
        raise BadRequest(413, f"{given[0]}: {len(items)} examples; at most {max_rows} in one request")
    if given[0] == "images":
        return images(encoder, [_base64(i, x) for i, x in enumerate(items)])
    if encoder.image_shape is not None:
        raise BadRequest(422, f'{given[0]}: this model takes images; send {{"images": [base64, ...]}}')
    if given[0] == "texts":
        if len(encoder.text_columns) != 1 or encoder.numeric or encoder.categories:
            raise BadRequest(422, 'texts: this model takes rows of columns; send {"rows": [...]}')
        items = [{encoder.text_columns[0]: t} for t in items]
    return rows(encoder, items)


def rows(encoder: Encoder, items: list[Any]) -> Examples:
    """Rows checked against the model's columns: all present, no others, each value of its kind."""
    kinds = describe(encoder)["columns"]
    for i, row in enumerate(items):
        if not isinstance(row, dict):
            raise BadRequest(422, f"rows[{i}]: must be an object of column: value")
        missing = [c for c in kinds if c not in row]
        extra = [c for c in row if c not in kinds]
        if missing:
            raise BadRequest(422, f"rows[{i}]: column '{missing[0]}' is missing; the model takes {', '.join(kinds)}")
        if extra:
            raise BadRequest(422, f"rows[{i}]: unknown column '{extra[0]}'; the model takes {', '.join(kinds)}")
        for name, kind in kinds.items():
            _check_value(i, name, kind, row[name])
    frame = pd.DataFrame(items, columns=list(kinds))
    for name, kind in kinds.items():
        if kind == "number":
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return Examples(target=np.zeros(len(frame)), frame=frame, ids=np.arange(len(frame)))


def _check_value(i: int, name: str, kind: str, value: Any) -> None:
    where = f"rows[{i}].{name}"
    if kind == "number":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequest(422, f"{where}: {value!r} is not a number (or null for missing)")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(422, f"{where}: {value!r} is not a finite number")
    elif kind == "category":
        if value is not None and not isinstance(value, str | int | float | bool):
            raise BadRequest(422, f"{where}: {type(value).__name__} is not a category value (a string or number)")
    elif not isinstance(value, str) or not value.strip():
        raise BadRequest(422, f"{where}: must be a non-empty text")


def _base64(i: int, item: Any) -> bytes:
    if not isinstance(item, str):
        raise BadRequest(422, f"images[{i}]: must be a base64 string of an image file")
    text = item.split(",", 1)[1] if item.startswith("data:") else item  # a data: URL as a browser makes it
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(422, f"images[{i}]: not valid base64") from None


def images(encoder: Encoder, files: list[bytes]) -> Examples:
    """Image files (their bytes) resized to the model's input, as `sw2 predict` reads them."""
    if encoder.image_shape is None:
        raise BadRequest(422, "images: this model takes rows or texts, not images")
    c, h, w = encoder.image_shape
    arrays = []
    for i, data in enumerate(files):
        try:
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
        except Exception:  # PIL raises many kinds for bytes that are not an image
            raise BadRequest(422, f"images[{i}]: not an image file PIL can read (PNG, JPEG, ...)") from None
        if width * height > MAX_PIXELS:
            raise BadRequest(413, f"images[{i}]: {width} x {height} pixels; at most {MAX_PIXELS:,} pixels")
        try:
            arrays.append(decode(io.BytesIO(data), (h, w), c))  # type: ignore[arg-type]
        except UserError:
            raise BadRequest(422, f"images[{i}]: the image cannot be decoded") from None
    return Examples(target=np.zeros(len(arrays)), images=np.stack(arrays), ids=np.arange(len(arrays)))
