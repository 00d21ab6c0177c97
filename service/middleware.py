"""ASGI middleware: request body size limit, per-route metrics and the request log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response
from service.logs import REQUEST_ID
from service.metrics import Metrics

# A caller's X-Request-ID is kept only if it is a plain token of bounded length, so that
# it cannot forge log lines or bloat them; anything else gets an id of ours.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
# Probes and scrapes arrive every few seconds: their lines are debug, not info.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

request_log = logging.getLogger("banditrec.http")


class BodySizeLimit:
    """Answers 413 for bodies over max_bytes, whether declared by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        # Buffer the body (bounded by max_bytes) so an oversize stream is refused before
        # the app has read, and possibly acted on, any of it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class RequestMetrics:
    """Counts requests and observes latency per route template (not per raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            template = route_template(scope)
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)


def route_template(scope: Scope) -> str:
    """Return the matched route's path template, or "unmatched"."""
    route: Any = scope.get("route")
    # Unmatched paths share one name so random URLs cannot explode cardinality.
    return str(getattr(route, "path", "unmatched"))


class RequestLog:
    """Gives each request an id (the caller's X-Request-ID if sane, else a new one), echoes
    it in the response's X-Request-ID and logs one line per request when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        status = 500
        error: str | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            template = route_template(scope)
            fields: dict[str, Any] = {
                "method": scope["method"],
                "route": template,
                "status": status,
                "latency_ms": round((time.perf_counter() - start) * 1000, 3),
            }
            if error is not None:
                fields["error"] = error
            level = logging.DEBUG if template in _QUIET_ROUTES else logging.INFO
            request_log.log(level, "request", extra={"event": "request", "fields": fields})
            REQUEST_ID.reset(token)
