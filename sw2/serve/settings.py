"""The server's settings: set by `sw2 serve` (or `sw2.serve.run`), handed to each worker as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from sw2.errors import UserError

ENV = "SW2_SERVE_SETTINGS"


@dataclass
class Settings:
    bundle: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    backend: str = "torch"
    max_batch: int = 32  # examples one network call takes (Ray Serve's default is 10, TorchServe's is set per model)
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    max_body_mb: float = 10.0  # larger request bodies answer 413
    max_rows: int = 1000  # examples in one request
    auth: bool = True
    key_file: str | None = None  # where the API key is read (or generated on first start)
    log_requests: str | None = None  # a JSON-lines file of requests, the spec's serve.mask columns masked
    graceful_s: float = 30.0  # how long in-flight requests may take to finish at shutdown

    def check(self) -> None:
        if not 0 < self.port < 65536:
            raise UserError(f"--port {self.port}: give a port between 1 and 65535")
        for flag, value, low in [("--workers", self.workers, 1), ("--max-batch", self.max_batch, 1),
                                 ("--max-rows", self.max_rows, 1)]:  # fmt: skip
            if value < low:
                raise UserError(f"{flag} {value}: give at least {low}")
        if self.max_wait_ms < 0 or self.max_body_mb <= 0:
            raise UserError("--max-wait-ms must be >= 0 and --max-body-mb > 0")

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        return cls(**json.loads(os.environ[ENV]))
