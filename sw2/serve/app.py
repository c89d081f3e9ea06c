"""The FastAPI application of one server worker: its own bundle, batcher, monitor and request log.

    POST /v1/predict     rows, texts, base64 images or multipart uploads -> labels + top-k, or values
    POST /v1/generate    a language model's text; "stream": true answers server-sent events, token by token
    POST /v1/sample      an image generator's images: one PNG grid, or base64 PNGs in JSON ("format": "json")
    GET  /v1/model       name, task, inputs, classes, metrics, fingerprint, the worker's process id
    GET  /healthz        alive (open)            GET /readyz   200 once the model is loaded and warmed up (open)
    GET  /metrics        Prometheus (the API key or $SW2_METRICS_KEY)
    GET  /               the web page (open; it asks for the key)

Every error is JSON `{"error": ...}` with a 4xx naming the problem (values echoed cut short); a full server
answers 503 with Retry-After; an unexpected failure is a 500 with no traceback (logged with one). The event
loop only moves bytes: decoding JSON, base64 and images, encoding inputs, the answers, the request log and
generation run in worker threads, so /healthz answers while a large request is worked on. Limits and
deadlines: sw2.serve.settings, sw2.serve.middleware. No answer is ever 200 with a non-finite number.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser

from sw2.bundle import Bundle
from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.serve import auth, payloads
from sw2.serve.batcher import Batcher, Full
from sw2.serve.middleware import OPEN, BodyLimit, Guard, busy, error
from sw2.serve.monitor import Monitor
from sw2.serve.page import page_html
from sw2.serve.payloads import BadRequest, Parsed
from sw2.serve.request_log import RequestLog
from sw2.serve.settings import Settings
from sw2.tasks.classify import json_label

__all__ = ["OPEN", "create_app", "from_environment"]
logger = logging.getLogger("sw2.serve")
T = TypeVar("T")


def from_environment() -> FastAPI:
    """The app a uvicorn worker builds (factory): settings from $SW2_SERVE_SETTINGS."""
    return create_app(Settings.from_env())


def create_app(settings: Settings) -> FastAPI:
    bundle = Bundle(settings.bundle, backend=settings.backend)
    key = auth.resolve(settings.key_file)[0] if settings.auth else None
    monitor = Monitor(bundle)
    log_path = Path(settings.log_requests) if settings.log_requests else None
    requests_log = RequestLog(bundle, log_path, int(settings.log_max_mb * 2**20))
    batcher = Batcher(bundle.run, settings.max_batch, settings.max_wait_ms, monitor.observe_batch, settings.max_queue)
    workers = ThreadPoolExecutor(2, thread_name_prefix="sw2-parse")  # requests' CPU work, off the event loop
    state = {"ready": False}
    task = bundle.task
    task.check_use(bundle, "serve")
    limit = int(settings.max_body_mb * 2**20)
    MultiPartParser.spool_max_size = limit + 1  # uploads stay in memory (bounded by the body limits), never /tmp

    # a task's `sample` that takes `until` (sw2.tasks.base) stops at a request's deadline; a plug-in's older one runs
    stoppable = "until" in inspect.signature(task.sample).parameters

    async def in_thread(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(workers, fn, *args)

    async def warm_up() -> None:
        """One call through the network before /readyz says ready (first calls allocate and pick kernels)."""
        try:
            if task.predicts:
                await batcher(dummy_inputs(bundle.encoder))
            elif task.samples:
                await asyncio.to_thread(task.sample, bundle, 1)
            else:
                await asyncio.to_thread(lambda: "".join(task.stream(bundle, "\n", tokens=2)))
            state["ready"] = True
        except Exception:
            logger.exception("sw2 serve: the warm-up call failed; /readyz stays 503")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        warming = asyncio.create_task(warm_up())
        yield
        warming.cancel()
        await batcher.stop()
        workers.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"sw2 serve: {bundle.spec.name}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, limit=limit, budget=int(settings.max_inflight_mb * 2**20))
    app.add_middleware(
        Guard,
        key=key,
        metrics_key=auth.metrics_key(),
        monitor=monitor,
        timeout_s=settings.timeout_s,
        max_concurrency=settings.max_concurrency,
    )  # fmt: skip  (outermost)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        what = {404: f"no such endpoint: {payloads.short(request.url.path)}",
                405: f"{request.method} is not allowed here"}  # fmt: skip
        return error(exc.status_code, what.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(BadRequest)
    async def bad(request: Request, exc: BadRequest) -> Response:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(UserError)
    async def refused(request: Request, exc: UserError) -> Response:
        return error(422, str(exc))

    @app.exception_handler(Full)
    async def full(request: Request, exc: Full) -> Response:
        return busy(f"{batcher.waiting} examples wait for the model: --max-queue")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if state["ready"]:
            return JSONResponse({"status": "ready"})
        return error(503, "warming up: the model is not ready yet")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return page_html(bundle)

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return {
            "name": bundle.spec.name,
            "task": bundle.task.name,
            "backend": settings.backend,
            "inputs": payloads.describe(bundle.encoder)
            if task.predicts
            else {"kind": "image generation" if task.samples else "text generation"},
            "classes": [json_label(c) for c in bundle.classes] if bundle.classes else None,
            "metrics": bundle.metrics.get("test") or bundle.metrics.get("val") or {},
            "fingerprint": bundle.fingerprint,
            "worker": os.getpid(),
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = await in_thread(monitor.exposition)
        return Response(body, media_type=content_type)

    def parse(kind: str, body: Any, deadline: float | None) -> tuple[Parsed, dict[str, torch.Tensor]]:
        """The request's examples and the encoder's tensors (a worker thread)."""
        if kind == "json":
            parsed = payloads.from_json(bundle.encoder, body, settings.max_rows, deadline)
        else:
            parsed = payloads.images(bundle.encoder, body, deadline)
        payloads.in_time(deadline)
        return parsed, bundle.encoder.inputs(parsed.examples)

    def answer(parsed: Parsed, outputs: torch.Tensor, top: int) -> dict[str, Any]:
        """The answer (a worker thread): refused for an example whose outputs are not finite, then counted,
        logged, and checked once more for non-finite numbers."""
        finite = torch.isfinite(outputs.reshape(len(outputs), -1)).all(1)
        if not bool(finite.all()):
            i = int((~finite).nonzero()[0, 0])
            raise BadRequest(422, f"example {i}: the model's outputs are not finite numbers for it (values far "
                                  "outside what it was trained on?); check its inputs")  # fmt: skip
        done = {"predictions": bundle.task.answers(bundle.encoder, outputs, top)}
        if not _finite(done):
            raise RuntimeError("a non-finite number in an answer from finite outputs")  # a bug: a 500, logged
        monitor.observe_outputs(parsed.examples, outputs)
        requests_log.log("/v1/predict", parsed.logged, done)
        return done

    @app.post("/v1/predict")
    async def predict(request: Request, top: int = 3) -> Response:
        if not task.predicts:
            what = 'makes images, POST /v1/sample {"n": 16}'
            if not task.samples:
                what = 'writes text, POST /v1/generate {"prompt": ...}'
            raise BadRequest(400, f"this model takes no examples: it {what}")
        if not 1 <= top <= 1000:
            raise BadRequest(422, f"top: {top}; give 1 to 1000")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        deadline = request.scope.get("sw2.deadline")
        with batcher.arrival():
            if kind == "application/json":
                parsed, inputs = await in_thread(parse, "json", await request.body(), deadline)
            elif kind == "multipart/form-data":
                parsed, inputs = await in_thread(parse, "files", await _uploads(request, settings.max_rows), deadline)
            else:
                raise BadRequest(415, f"content type {payloads.short(kind or 'none')}: send application/json or "
                                      "multipart/form-data")  # fmt: skip
        outputs = await batcher(inputs)
        return JSONResponse(await in_thread(answer, parsed, outputs, top))

    @app.post("/v1/generate")
    async def generate(request: Request) -> Response:
        if not task.generates:
            raise BadRequest(400, "this model writes no text: it predicts examples, POST /v1/predict")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise BadRequest(415, 'send application/json: {"prompt": "...", "tokens": 200, "stream": false}')
        options = await in_thread(payloads.generate_options, await request.body(), settings.max_prompt_chars)
        stream, prompt = options.pop("stream"), options.pop("prompt")
        deadline = request.scope.get("sw2.deadline")
        pieces = task.stream(bundle, prompt, **options)
        await in_thread(requests_log.log, "/v1/generate", {"prompt": prompt}, {"tokens": options["tokens"]})
        if not stream:
            return JSONResponse({"text": await asyncio.to_thread(lambda: "".join(_until(pieces, deadline)))})
        first = await asyncio.to_thread(next, pieces, "")  # option errors surface here, before the 200

        async def events() -> AsyncIterator[str]:
            yield f"data: {json.dumps({'text': first})}\n\n"
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                yield f"data: {json.dumps({'text': piece})}\n\n"
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/sample")
    async def sample(request: Request) -> Response:
        if not task.samples:
            raise BadRequest(
                400,
                "this model makes no images: "
                + ("POST /v1/generate" if task.generates else "it predicts examples, POST /v1/predict"),
            )
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise BadRequest(415, 'send application/json: {"n": 16, "seed": 0, "class": null, "format": "png"}')
        options = await in_thread(payloads.sample_options, await request.body(), settings.max_samples)
        deadline = request.scope.get("sw2.deadline")
        check = {"until": lambda: payloads.in_time(deadline)} if stoppable else {}  # stops at the deadline
        images = await in_thread(lambda: task.sample(bundle, options["n"], options["class"], options["seed"], **check))
        payloads.in_time(deadline)
        await in_thread(requests_log.log, "/v1/sample", {k: options[k] for k in ("n", "seed")}, {"n": len(images)})
        if options["format"] == "png":
            return Response(await in_thread(payloads.png_grid, images), media_type="image/png")
        return JSONResponse({"images": await in_thread(payloads.png_list, images)})

    return app


def _until(pieces: Iterator[str], deadline: float | None) -> Iterator[str]:
    """`pieces` while the request's deadline holds (a 504 after: generation stops)."""
    for piece in pieces:
        payloads.in_time(deadline)
        yield piece


def _finite(obj: Any) -> bool:
    """No NaN, infinity or null anywhere in `obj`."""
    if obj is None:
        return False
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite(v) for v in obj)
    return True


async def _uploads(request: Request, max_rows: int) -> list[bytes]:
    form = await request.form(max_files=max_rows, max_fields=max_rows)
    files = [f for f in form.getlist("files") if hasattr(f, "read")]
    if not files:
        raise BadRequest(422, "multipart: no image in the 'files' field")
    return [await f.read() for f in files]  # type: ignore[union-attr]


def dummy_inputs(encoder: Encoder) -> dict[str, torch.Tensor]:
    """One example of zeros shaped as the encoder's tensors: the warm-up call."""
    if hasattr(encoder, "observations"):  # a policy's environment
        return encoder.inputs(encoder.examples(np.zeros((1, *encoder.observation_shape), np.float32)))
    out: dict[str, torch.Tensor] = {}
    if encoder.image_shape is not None:
        out["image"] = torch.zeros(1, *encoder.image_shape, dtype=torch.uint8)
    if encoder.numeric:
        out["num"] = torch.zeros(1, len(encoder.numeric))
    if encoder.categories:
        out["cat"] = torch.zeros(1, len(encoder.categories), dtype=torch.long)
    if encoder.text_columns:
        out["text"] = torch.ones(1, encoder.max_tokens, dtype=torch.long)
    return out
