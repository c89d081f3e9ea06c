"""The server's two ASGI layers, plain ASGI (Starlette's BaseHTTPMiddleware would add a task and a copy of
the response per request).

Guard (outermost): auth on every path but the open ones; at most `max_concurrency` requests at once (the
open probes and /metrics not counted), else 503 with Retry-After; a deadline of `timeout_s` until the answer
starts (408 for a body still not received, 504 otherwise: the request's work is cancelled); a client that
hung up is counted as 499; an unexpected exception is a 500 without a traceback in the answer, and with one
in the server's log; every request timed and counted by endpoint and status.

BodyLimit: 413 for a body over `limit` bytes, at once from Content-Length, else while it is read (chunked
bodies too); and at most `budget` bytes of bodies held by all requests together, else 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sw2.serve import auth
from sw2.serve.monitor import Monitor

logger = logging.getLogger("sw2.serve")
OPEN = ("/healthz", "/readyz", "/")
UNCOUNTED = (*OPEN, "/metrics")  # never refused as busy: probes and scrapes must answer under load
KNOWN = ("/v1/predict", "/v1/generate", "/v1/model", "/metrics", *OPEN)
MAX_MESSAGE = 500  # characters of an error message
RETRY_AFTER = "1"  # seconds a client told "busy" waits


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    text = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
    return JSONResponse({"error": text}, status_code=status, headers=headers)


def busy(what: str) -> JSONResponse:
    return error(503, f"the server is busy ({what}); retry after {RETRY_AFTER} s", {"Retry-After": RETRY_AFTER})


class Guard:
    def __init__(
        self, app: ASGIApp, key: str | None, metrics_key: str | None, monitor: Monitor, timeout_s: float,
        max_concurrency: int,
    ) -> None:  # fmt: skip
        self.app, self.key, self.metrics_key, self.monitor = app, key, metrics_key, monitor
        self.timeout, self.max_concurrency, self.active = timeout_s, max_concurrency, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, path = time.perf_counter(), scope["path"]
        endpoint = path if path in KNOWN else "other"  # a bounded label set for the metrics
        if self.key is not None and path not in OPEN:
            keys = (self.key, self.metrics_key) if path == "/metrics" else (self.key,)
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not auth.allowed(header, *keys):
                response = error(401, "missing or wrong API key: send Authorization: Bearer KEY")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return self.monitor.observe_request(endpoint, 401, time.perf_counter() - t0)
        counted = path not in UNCOUNTED
        if counted and self.active >= self.max_concurrency:
            await busy(f"{self.active} requests in progress")(scope, receive, send)
            return self.monitor.observe_request(endpoint, 503, time.perf_counter() - t0)
        self.active += counted
        state: dict[str, Any] = {"started": False, "status": 500, "late": False, "counted": counted}
        try:
            status = await self._answer(scope, receive, send, path, state)
        finally:
            self._release(state)
        self.monitor.observe_request(endpoint, status, time.perf_counter() - t0)

    def _release(self, state: dict[str, Any]) -> None:
        """The request leaves the count once its answer is sent (a keep-alive client's next request may come
        before the coroutine ends)."""
        self.active -= state["counted"]
        state["counted"] = False

    async def _answer(self, scope: Scope, receive: Receive, send: Send, path: str, state: dict[str, Any]) -> int:
        """Run the app within the deadline; the status answered (499: the client hung up)."""

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"], state["status"] = True, message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                self._release(state)
            await send(message)

        task = asyncio.current_task()
        assert task is not None

        def late() -> None:  # the deadline: work on a request whose answer has not started stops
            if not state["started"]:
                state["late"] = True
                task.cancel()

        timer = asyncio.get_running_loop().call_later(self.timeout, late)
        scope["sw2.deadline"] = time.monotonic() + self.timeout  # for work in threads, which cannot be cancelled
        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            if not state["late"]:
                raise  # the server is shutting down
            task.uncancel()
            unread = scope["method"] == "POST" and not scope.get("sw2.body_done")
            status, what = (408, "the request body") if unread else (504, "the answer")
            await error(status, f"{what} took longer than the server's {self.timeout:g} s (--timeout-s)")(
                scope, receive, send
            )
            return status
        except ClientDisconnect:
            return 499  # nginx's code for a client that closed the connection: not a server error
        except Exception:  # a bug, not the client's fault: a 500 with no traceback in the answer
            logger.exception("sw2 serve: unexpected error on %s %s", scope["method"], path)
            if not state["started"]:
                await error(500, "internal error; the server's log has the details")(scope, receive, send)
            return 500
        finally:
            timer.cancel()
        return state["status"]


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, budget: int) -> None:
        self.app, self.limit, self.budget = app, limit, budget
        self.held = 0  # bytes of request bodies received by requests still in progress

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"").decode() or None
        if length is not None and length.isdigit():
            if int(length) > self.limit:
                return await self._refuse(413, scope, receive, send)
            if self.held + int(length) > self.budget:
                return await self._refuse(503, scope, receive, send)
        if length == "0" or scope["method"] in ("GET", "HEAD"):
            scope["sw2.body_done"] = True
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                n = len(message.get("body", b""))
                seen += n
                self.held += n
                if seen > self.limit:
                    raise _Refused(413)
                if self.held > self.budget:
                    raise _Refused(503)
                if not message.get("more_body", False):
                    scope["sw2.body_done"] = True
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _Refused as refused:
            if not started:
                await self._refuse(refused.status, scope, receive, send)
        finally:
            self.held -= seen

    async def _refuse(self, status: int, scope: Scope, receive: Receive, send: Send) -> None:
        if status == 413:
            message = (f"request body over {self.limit / 2**20:g} MB; send less (or start the server with a larger "
                       "--max-body-mb)")  # fmt: skip
            await error(413, message)(scope, receive, send)
        else:
            await busy("request bodies in memory: --max-inflight-mb")(scope, receive, send)


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
