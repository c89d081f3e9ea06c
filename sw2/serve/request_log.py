"""Optional request logging (`sw2 serve --log-requests FILE`): one JSON line per request, written only after
the spec's `serve.mask` columns are masked: replaced by a salted SHA-256 (mask_mode: hash; equal values stay
equal within one server run, and cannot be looked up in a table) or left out (mask_mode: drop). Images are
never logged: only their size and hash."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any


class RequestLog:
    def __init__(self, bundle: Any, path: Path | None) -> None:
        serve = bundle.spec.serve
        self.path, self.mask, self.mode = path, set(serve.mask), serve.mask_mode
        self.text_columns = list(getattr(bundle.encoder, "text_columns", []))
        self.salt = secrets.token_bytes(16)  # per server start: hashes cannot be joined across runs
        self.lock = threading.Lock()

    def _hash(self, value: Any) -> str:
        return "sha256:" + hashlib.sha256(self.salt + str(value).encode()).hexdigest()[:32]

    def masked(self, payload: Any) -> Any:
        """The payload as it may be written: masked rows and texts, images as size and hash."""
        if not isinstance(payload, dict):
            return None
        out: dict[str, Any] = {}
        if isinstance(payload.get("rows"), list):
            out["rows"] = [self._row(r) if isinstance(r, dict) else None for r in payload["rows"]]
        if isinstance(payload.get("texts"), list):
            column = self.text_columns[0] if self.text_columns else "text"
            out["texts"] = [self._row({column: t}).get(column) for t in payload["texts"]]
        if isinstance(payload.get("images"), list):
            out["images"] = [{"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()[:16]}
                             for b in payload["images"] if isinstance(b, bytes)]  # fmt: skip
        if "prompt" in payload:
            out["prompt"] = self._row({"prompt": payload["prompt"]}).get("prompt")
        return out

    def _row(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.mode == "drop":
            return {k: v for k, v in row.items() if k not in self.mask}
        return {k: self._hash(v) if k in self.mask else v for k, v in row.items()}

    def log(self, endpoint: str, payload: Any, answer: Any) -> None:
        if self.path is None:
            return
        line = {"time": round(time.time(), 3), "endpoint": endpoint, "request": self.masked(payload), "answer": answer}
        text = json.dumps(line, default=str) + "\n"
        with self.lock, self.path.open("a", encoding="utf-8") as f:
            f.write(text)
