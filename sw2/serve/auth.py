"""The API key. Auth is on by default (TorchServe turned token auth on by default after its 2023 advisories):
the key comes from $SW2_API_KEY, else from the key file (--key-file, default ~/.config/sw2/api-key), which
is generated on first start with 32 random bytes and created readable by its owner only (0600, its folder
0700). Requests carry it as `Authorization: Bearer KEY`, compared in constant time. /metrics also takes
$SW2_METRICS_KEY, so a scraper need not hold the key that predicts.

A key must be strong (`strong`): at least 32 characters that vary like random ones (not the placeholder of
deploy/secret.yaml, not a short pattern repeated), as `openssl rand -hex 32` gives; a weak one stops the
server at start with one line saying so."""

from __future__ import annotations

import hmac
import math
import os
import secrets
from collections import Counter
from pathlib import Path

from sw2.errors import UserError

ENV_KEY, ENV_METRICS_KEY = "SW2_API_KEY", "SW2_METRICS_KEY"
MIN_LENGTH = 32
MIN_BITS = 80  # the characters' empirical entropy, added up: 32 random hex digits have ~115 (> 90 in 10^5 draws)
PLACEHOLDERS = (
    "REPLACE-WITH-A-RANDOM-KEY-OF-32-OR-MORE-CHARACTERS",
    "REPLACE-WITH-A-RANDOM-METRICS-KEY-OF-32-OR-MORE-CHARACTERS",
)  # deploy/secret.yaml


def strong(key: str, where: str) -> str:
    """`key` if it is strong enough to guard a model; else a UserError naming `where` it came from."""
    fix = "give at least 32 random characters (e.g. openssl rand -hex 32)"
    if key in PLACEHOLDERS or key.startswith("REPLACE-WITH"):
        raise UserError(f"{where}: holds the placeholder of deploy/secret.yaml, not a key; {fix}")
    if len(key) < MIN_LENGTH:
        raise UserError(f"{where}: a key of {len(key)} characters is too short; {fix}")
    counts = Counter(key).values()
    bits = -sum(n * math.log2(n / len(key)) for n in counts)
    period = next(p for p in range(1, len(key) + 1) if key == (key[:p] * (len(key) // p + 1))[: len(key)])
    if bits < MIN_BITS or period < MIN_LENGTH:
        raise UserError(f"{where}: the key repeats or varies too little to be guessed hard; {fix}")
    return key


def default_key_file() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sw2" / "api-key"


def resolve(key_file: str | None) -> tuple[str, str]:
    """The key and where it came from; generates the key file if there is none yet."""
    if os.environ.get(ENV_KEY):
        return strong(os.environ[ENV_KEY], f"${ENV_KEY}"), f"${ENV_KEY}"
    path = Path(key_file) if key_file else default_key_file()
    if path.exists():
        if path.is_dir():
            raise UserError(f"--key-file {path}: is a folder; give the file that holds the API key")
        if path.stat().st_mode & 0o077:
            raise UserError(f"{path}: others may read the API key; chmod 600 {path}")
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: cannot read the API key ({err}); delete it to have one generated") from None
        return strong(key, f"{path} (delete it to have one generated)"), str(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, f"{path} (generated)"


def metrics_key() -> str | None:
    """$SW2_METRICS_KEY, checked as the API key is, or None."""
    key = os.environ.get(ENV_METRICS_KEY)
    return strong(key, f"${ENV_METRICS_KEY}") if key else None


def allowed(header: str | None, *keys: str | None) -> bool:
    """Whether the Authorization header holds one of `keys` as a bearer token (constant-time comparison)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    given = token.strip().encode()
    return any(k is not None and hmac.compare_digest(given, k.encode()) for k in keys)
