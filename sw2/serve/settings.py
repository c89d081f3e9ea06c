"""The server's settings: set by `sw2 serve` (or `sw2.serve.run`), handed to each worker as JSON.

The limits bound what one client can cost a worker: time (`timeout_s`), memory (`max_inflight_mb` of request
bodies at once, `max_queue` examples waiting for the network, `max_concurrency` requests at once) and work
(`max_rows` examples and `max_prompt_chars` characters a request, a pixel budget scaled to the model's input:
sw2.serve.payloads). Past a limit the answer is a 4xx for the client's own request, or a 503 with Retry-After
when the server is full.
"""

from __future__ import annotations

import json
import math
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
    log_requests: str | None = None  # a JSON-lines file of requests, every value hashed unless serve.log_columns
    graceful_s: float = 30.0  # how long in-flight requests may take to finish at shutdown
    timeout_s: float = 30.0  # a request not answered by then (body read included) is 408/504: no work goes on
    max_concurrency: int = 64  # requests handled at once (the probes not counted); more answer 503
    max_queue: int = 2048  # examples waiting for the network; a request that would pass it answers 503
    max_inflight_mb: float = 256.0  # request bodies held at once, all requests together; past it 503
    max_prompt_chars: int = 10_000  # a generate prompt's characters (the model reads only its context anyway)
    max_samples: int = 64  # images one /v1/sample request may ask for
    log_max_mb: float = 100.0  # the request log is rotated at this size (3 older files kept)

    def check(self) -> None:
        """Every value in range (NaN and infinity are not), one line naming the flag otherwise."""
        if not 0 < self.port < 65536:
            raise UserError(f"--port {self.port}: give a port between 1 and 65535")
        whole = [("--workers", self.workers), ("--max-batch", self.max_batch), ("--max-rows", self.max_rows),
                 ("--max-concurrency", self.max_concurrency), ("--max-queue", self.max_queue),
                 ("--max-prompt-chars", self.max_prompt_chars), ("--max-samples", self.max_samples)]  # fmt: skip
        for flag, value in whole:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{flag} {value}: give a whole number of at least 1")
        positive = [("--max-body-mb", self.max_body_mb), ("--timeout-s", self.timeout_s),
                    ("--max-inflight-mb", self.max_inflight_mb), ("--log-max-mb", self.log_max_mb),
                    ("--graceful-s", self.graceful_s)]  # fmt: skip
        for flag, value in positive:
            if not math.isfinite(value) or value <= 0:
                raise UserError(f"{flag} {value}: give a finite number above 0")
        if not math.isfinite(self.max_wait_ms) or self.max_wait_ms < 0:
            raise UserError(f"--max-wait-ms {self.max_wait_ms}: give a finite number >= 0")
        if self.max_inflight_mb < self.max_body_mb:
            raise UserError(f"--max-inflight-mb {self.max_inflight_mb:g}: give at least --max-body-mb "
                            f"({self.max_body_mb:g}), or one request could never be read")  # fmt: skip
        if self.max_queue < max(self.max_batch, self.max_rows):
            raise UserError(f"--max-queue {self.max_queue}: give at least --max-batch ({self.max_batch}) and "
                            f"--max-rows ({self.max_rows}), or a full request could never be queued")  # fmt: skip

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        return cls(**json.loads(os.environ[ENV]))
