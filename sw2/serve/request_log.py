"""Optional request logging (`sw2 serve --log-requests FILE`): one JSON line per request, masked before
anything is written.

Every value is masked unless the spec lists its column in `serve.log_columns` (and not in `serve.mask`):
replaced by a salted SHA-256 (`mask_mode: hash`; equal values stay equal within one server run and cannot be
looked up in a table) or left out (`mask_mode: drop`). Texts are masked like any column; a generate prompt
too, unless "prompt" is listed. Images are never logged: only their size and a hash. A logged value is cut
to `MAX_VALUE` characters. The file is created 0600 (it may hold what clients sent) and rotated at
`max_bytes` (FILE.1 ... FILE.3 kept); workers of one server share it through a lock file beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: one worker's lock only
    fcntl = None  # type: ignore[assignment]

MAX_VALUE = 200  # characters of a logged value
KEEP = 3  # rotated files kept


class RequestLog:
    def __init__(self, bundle: Any, path: Path | None, max_bytes: int = 100 * 2**20) -> None:
        serve = bundle.spec.serve
        self.path, self.mode, self.max_bytes = path, serve.mask_mode, max_bytes
        self.plain = set(serve.log_columns) - set(serve.mask)
        self.text_columns = list(getattr(bundle.encoder, "text_columns", []))
        self.salt = secrets.token_bytes(16)  # per server start: hashes cannot be joined across runs
        self.lock = threading.Lock()
        self.lock_fd: int | None = None
        if path is not None:  # created (or tightened) at start: a wrong path is an error before serving
            os.close(_private(path))
            self.lock_fd = _private(path.with_name(path.name + ".lock"))

    def _hash(self, value: Any) -> str:
        return "sha256:" + hashlib.sha256(self.salt + str(value).encode()).hexdigest()[:32]

    def masked(self, payload: Any) -> dict[str, Any]:
        """The request as it may be written: rows, texts and prompts masked, images as size and hash."""
        if not isinstance(payload, dict):
            return {}
        out: dict[str, Any] = {}
        if isinstance(payload.get("rows"), list):
            out["rows"] = [self._row(r) if isinstance(r, dict) else None for r in payload["rows"]]
        if isinstance(payload.get("texts"), list):
            column = self.text_columns[0] if self.text_columns else "text"
            out["texts"] = [self._row({column: t}).get(column) for t in payload["texts"]]
        if isinstance(payload.get("images"), list):
            out["images"] = [i for i in payload["images"] if isinstance(i, dict)]  # size and hash: payloads.images
        if "prompt" in payload:
            out["prompt"] = self._row({"prompt": payload["prompt"]}).get("prompt")
        return out

    def _row(self, row: dict[str, Any]) -> dict[str, Any]:
        kept = {str(k)[:MAX_VALUE]: v for k, v in row.items() if k in self.plain or self.mode == "hash"}
        return {k: _capped(v) if k in self.plain else self._hash(v) for k, v in kept.items()}

    def log(self, endpoint: str, payload: Any, answer: Any) -> None:
        if self.path is None:
            return
        line = {"time": round(time.time(), 3), "endpoint": endpoint, "request": self.masked(payload), "answer": answer}
        data = (json.dumps(_finite(line), allow_nan=False, default=str) + "\n").encode()
        with self._locked():
            if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                self._rotate()
            fd = _private(self.path)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self.lock:
            if fcntl is not None and self.lock_fd is not None:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None and self.lock_fd is not None:
                    fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def _rotate(self) -> None:
        assert self.path is not None
        for k in range(KEEP - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{k}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{k + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def _private(path: Path) -> int:
    """`path` opened for appending, created 0600; an older file's looser mode is tightened."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _capped(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return value[: MAX_VALUE - 1] + "…"
    return value if value is None or isinstance(value, bool | int | float) else _capped(str(value))


def _finite(obj: Any) -> Any:
    """`obj` with NaN and infinities as null: a JSON line any reader parses."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
