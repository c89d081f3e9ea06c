"""Starting the server: checks first (bundle, backend, key), then uvicorn with N worker processes, each
building its own app and model from the settings (JSON in the environment, never pickled)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sw2 import log
from sw2.bundle import Bundle
from sw2.errors import UserError
from sw2.serve import auth
from sw2.serve.settings import ENV, Settings

BACKSTOP = 64  # connections past --max-concurrency that uvicorn still takes (probes, scrapes, the 503s of the app)


def serve(settings: Settings) -> None:
    """Serve `settings.bundle` until SIGINT/SIGTERM; in-flight requests finish first (up to graceful_s)."""
    try:
        import uvicorn
    except ImportError:
        raise UserError("sw2 serve needs FastAPI and uvicorn: pip install 'sw2[serve]'") from None
    settings.check()
    bundle = Bundle(settings.bundle, backend=settings.backend)  # a bad bundle or backend is a one-line error here
    bundle.task.check_use(bundle, "serve")  # as is one its task does not serve
    if settings.log_requests and not Path(settings.log_requests).resolve().parent.is_dir():
        raise UserError(f"--log-requests {settings.log_requests}: its folder does not exist; create it first")
    auth.metrics_key()  # a weak $SW2_METRICS_KEY stops the start as a weak API key does
    if settings.auth:
        key, source = auth.resolve(settings.key_file)
        log.info(f"sw2 serve: API key from {source} ({len(key)} characters); send it as Authorization: Bearer KEY")
    else:
        log.warning("sw2 serve: --no-auth: anyone who can reach the port can use the model")
    os.environ[ENV] = settings.to_env()
    metrics_dir = None
    if settings.workers > 1:  # prometheus-client adds up the workers' metrics through files in this folder
        metrics_dir = tempfile.mkdtemp(prefix="sw2-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    log.info(f"sw2 serve: http://{settings.host}:{settings.port}/ ({settings.workers} worker(s), {settings.backend})")
    try:
        uvicorn.run(
            "sw2.serve.app:from_environment", factory=True, host=settings.host, port=settings.port,
            workers=settings.workers, timeout_graceful_shutdown=settings.graceful_s, log_level="warning",
            access_log=False, limit_concurrency=settings.max_concurrency + BACKSTOP, timeout_keep_alive=5,
        )  # fmt: skip
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
