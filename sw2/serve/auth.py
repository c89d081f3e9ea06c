"""The API key. Auth is on by default (TorchServe turned token auth on by default after its 2023 advisories):
the key comes from $SW2_API_KEY, else from the key file (--key-file, default ~/.config/sw2/api-key), which
is generated on first start with 32 random bytes and created readable by its owner only (0600, its folder
0700). Requests carry it as `Authorization: Bearer KEY`, compared in constant time. /metrics also takes
$SW2_METRICS_KEY, so a scraper need not hold the key that predicts."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from sw2.errors import UserError

ENV_KEY, ENV_METRICS_KEY = "SW2_API_KEY", "SW2_METRICS_KEY"


def default_key_file() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sw2" / "api-key"


def resolve(key_file: str | None) -> tuple[str, str]:
    """The key and where it came from; generates the key file if there is none yet."""
    if os.environ.get(ENV_KEY):
        return os.environ[ENV_KEY], f"${ENV_KEY}"
    path = Path(key_file) if key_file else default_key_file()
    if path.exists():
        if path.is_dir():
            raise UserError(f"--key-file {path}: is a folder; give the file that holds the API key")
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 16:
            raise UserError(f"{path}: holds no API key of at least 16 characters; delete it to have one generated")
        if path.stat().st_mode & 0o077:
            raise UserError(f"{path}: others may read the API key; chmod 600 {path}")
        return key, str(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, f"{path} (generated)"


def allowed(header: str | None, *keys: str | None) -> bool:
    """Whether the Authorization header holds one of `keys` as a bearer token (constant-time comparison)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    given = token.strip().encode()
    return any(k is not None and hmac.compare_digest(given, k.encode()) for k in keys)
