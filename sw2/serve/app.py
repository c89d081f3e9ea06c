"""The FastAPI application of one server worker: its own bundle, batcher, monitor and request log.

    POST /v1/predict     rows, texts, base64 images or multipart uploads -> labels + top-k, or values
    POST /v1/generate    a language model's text; "stream": true answers server-sent events, token by token
    GET  /v1/model       name, task, inputs, classes, metrics, fingerprint
    GET  /healthz        alive (open)            GET /readyz   200 once the model is loaded and warmed up (open)
    GET  /metrics        Prometheus (the API key or $SW2_METRICS_KEY)
    GET  /               the web page (open; it asks for the key)

Every error is JSON `{"error": ...}` with a 4xx naming the problem; an unexpected failure is a 500 with no
traceback (logged). The request body limit (413) is enforced while the body is read, chunked bodies too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sw2.bundle import Bundle
from sw2.data.encode import Encoder
from sw2.errors import UserError
from sw2.serve import auth, payloads
from sw2.serve.batcher import Batcher
from sw2.serve.monitor import Monitor
from sw2.serve.page import page_html
from sw2.serve.payloads import BadRequest
from sw2.serve.request_log import RequestLog
from sw2.serve.settings import Settings
from sw2.tasks.classify import json_label

logger = logging.getLogger("sw2.serve")
OPEN = ("/healthz", "/readyz", "/")
MAX_TOKENS = 2000  # a generate request's new tokens


def from_environment() -> FastAPI:
    """The app a uvicorn worker builds (factory): settings from $SW2_SERVE_SETTINGS."""
    return create_app(Settings.from_env())


def create_app(settings: Settings) -> FastAPI:
    bundle = Bundle(settings.bundle, backend=settings.backend)
    key = auth.resolve(settings.key_file)[0] if settings.auth else None
    metrics_key = os.environ.get(auth.ENV_METRICS_KEY)
    monitor = Monitor(bundle)
    requests_log = RequestLog(bundle, Path(settings.log_requests) if settings.log_requests else None)
    batcher = Batcher(bundle.run, settings.max_batch, settings.max_wait_ms, monitor.observe_batch)
    state = {"ready": False}
    is_lm = not isinstance(bundle.encoder, Encoder)

    async def warm_up() -> None:
        """One call through the network before /readyz says ready (first calls allocate and pick kernels)."""
        try:
            if is_lm:
                await asyncio.to_thread(lambda: "".join(bundle.task.stream(bundle, "\n", tokens=2)))
            else:
                await batcher(dummy_inputs(bundle.encoder))
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

    app = FastAPI(title=f"sw2 serve: {bundle.spec.name}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, limit=int(settings.max_body_mb * 1024 * 1024))
    app.add_middleware(Guard, key=key, metrics_key=metrics_key, monitor=monitor)  # outermost

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        what = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} is not allowed here"}
        return error(exc.status_code, what.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(BadRequest)
    async def bad(request: Request, exc: BadRequest) -> Response:
        return error(exc.status, exc.message)

    @app.exception_handler(UserError)
    async def refused(request: Request, exc: UserError) -> Response:
        return error(422, str(exc))

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
            "inputs": {"kind": "text generation"} if is_lm else payloads.describe(bundle.encoder),
            "classes": [json_label(c) for c in bundle.classes] if bundle.classes else None,
            "metrics": bundle.metrics.get("test") or bundle.metrics.get("val") or {},
            "fingerprint": bundle.fingerprint,
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = monitor.exposition()
        return Response(body, media_type=content_type)

    @app.post("/v1/predict")
    async def predict(request: Request, top: int = 3) -> dict[str, Any]:
        if is_lm:
            raise BadRequest(400, 'this is a language model: POST /v1/generate {"prompt": ...}')
        if not 1 <= top <= 1000:
            raise BadRequest(422, f"top: {top}; give 1 or more")
        encoder: Encoder = bundle.encoder
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        with batcher.arrival():
            if kind == "application/json":
                body = await request.body()
                examples = payloads.from_json(encoder, body, settings.max_rows)
                logged: Any = json.loads(body) if requests_log.path else None
            elif kind == "multipart/form-data":
                files = await _uploads(request, settings.max_rows)
                examples, logged = payloads.images(encoder, files), {"images": files}
            else:
                raise BadRequest(415, f"content type '{kind or 'none'}': send application/json or multipart/form-data")
            inputs = encoder.inputs(examples)
        outputs = await batcher(inputs)
        monitor.observe_outputs(examples, outputs)
        answer = {"predictions": bundle.task.answers(encoder, outputs, top)}
        requests_log.log("/v1/predict", logged, answer)
        return answer

    @app.post("/v1/generate")
    async def generate(request: Request) -> Response:
        if not is_lm:
            raise BadRequest(400, "this model predicts examples: POST /v1/predict")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise BadRequest(415, 'send application/json: {"prompt": "...", "tokens": 200, "stream": false}')
        options = _generate_options(await request.body())
        stream, prompt = options.pop("stream"), options.pop("prompt")
        pieces = bundle.task.stream(bundle, prompt, **options)
        requests_log.log("/v1/generate", {"prompt": prompt}, {"tokens": options["tokens"]})
        if not stream:
            return JSONResponse({"text": await asyncio.to_thread(lambda: "".join(pieces))})

        async def events() -> AsyncIterator[str]:
            async for piece in iterate_in_threadpool(pieces):
                yield f"data: {json.dumps({'text': piece})}\n\n"
            yield "event: done\ndata: {}\n\n"

        first = await asyncio.to_thread(next, pieces, "")  # option errors surface here, before the 200
        return StreamingResponse(_prepend(f"data: {json.dumps({'text': first})}\n\n", events()),
                                 media_type="text/event-stream")  # fmt: skip

    return app


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _endpoint(path: str) -> str:
    """A bounded label set for the metrics: the known paths, everything else as 'other'."""
    known = ("/v1/predict", "/v1/generate", "/v1/model", "/healthz", "/readyz", "/metrics", "/")
    return path if path in known else "other"


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for item in rest:
        yield item


async def _uploads(request: Request, max_rows: int) -> list[bytes]:
    form = await request.form(max_files=max_rows, max_fields=max_rows)
    files = [f for f in form.getlist("files") if hasattr(f, "read")]
    if not files:
        raise BadRequest(422, "multipart: no image in the 'files' field")
    return [await f.read() for f in files]  # type: ignore[union-attr]


def _generate_options(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, f"malformed JSON: {err}") from None
    if not isinstance(payload, dict):
        raise BadRequest(422, 'the body must be a JSON object: {"prompt": "..."}')
    known = {"prompt", "tokens", "temperature", "top_k", "seed", "stream"}
    extra = [k for k in payload if k not in known]
    if extra:
        raise BadRequest(422, f"unknown field '{extra[0]}'; give {', '.join(sorted(known))}")
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest(422, "prompt: must be a non-empty text")
    tokens, temperature = payload.get("tokens", 200), payload.get("temperature", 1.0)
    top_k, seed = payload.get("top_k"), payload.get("seed", 0)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= MAX_TOKENS:
        raise BadRequest(422, f"tokens: give a whole number from 1 to {MAX_TOKENS}")
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) or temperature < 0:
        raise BadRequest(422, "temperature: give a number >= 0 (0: greedy)")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise BadRequest(422, "top_k: give a whole number >= 1, or leave it out")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BadRequest(422, "seed: give a whole number")
    return {"prompt": prompt, "tokens": tokens, "temperature": float(temperature), "top_k": top_k, "seed": seed,
            "stream": bool(payload.get("stream", False))}  # fmt: skip


def dummy_inputs(encoder: Encoder) -> dict[str, torch.Tensor]:
    """One example of zeros shaped as the encoder's tensors: the warm-up call."""
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


class Guard:
    """Auth (every path but the open ones), then timing and counting by endpoint and status; an unexpected
    exception becomes a 500 JSON without a traceback. Plain ASGI: Starlette's BaseHTTPMiddleware would add a
    task and a copy of the response per request."""

    def __init__(self, app: ASGIApp, key: str | None, metrics_key: str | None, monitor: Monitor) -> None:
        self.app, self.key, self.metrics_key, self.monitor = app, key, metrics_key, monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, path, status = time.perf_counter(), scope["path"], 500
        if self.key is not None and path not in OPEN:
            keys = (self.key, self.metrics_key) if path == "/metrics" else (self.key,)
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not auth.allowed(header, *keys):
                response = error(401, "missing or wrong API key: send Authorization: Bearer KEY")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                self.monitor.observe_request(_endpoint(path), 401, time.perf_counter() - t0)
                return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:  # a bug, not the client's fault: a 500 with no traceback in the answer
            logger.exception("sw2 serve: unexpected error on %s", path)
            if not started:
                await error(500, "internal error; the server's log has the details")(scope, receive, send)
            status = 500
        self.monitor.observe_request(_endpoint(path), status, time.perf_counter() - t0)


class BodyLimit:
    """413 for a request body over `limit` bytes: at once from Content-Length, else while it is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode() or None
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _too_large(self.limit, send)
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _too_large(self.limit, send)


class _TooLarge(Exception):
    pass


async def _too_large(limit: int, send: Send) -> None:
    body = json.dumps({"error": f"request body over {limit / 1024 / 1024:g} MB; send less (or start the server "
                                "with a larger --max-body-mb)"}).encode()  # fmt: skip
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
