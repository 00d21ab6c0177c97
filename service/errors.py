"""The one error shape, {"error": {"code", "message", "field"}}, and the handlers that emit it."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.engine.errors import EngineError, InvalidRequest, NotFound
from service.store import DimensionMismatch, StoreUnavailable
from service.store.connection import CAUSES

log = logging.getLogger("banditrec")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with a status, a stable code, a message and optionally the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """Return the error shape as a JSON-ready dict."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return {"error": body}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: Any = None
) -> JSONResponse:
    """Return the JSON error response."""
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def field_path(loc: Sequence[str | int]) -> str:
    """Return a pydantic location as a readable path, e.g. events[3].item_id."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


# Problems spelt out in one message; a batch of 1000 bad events must not make a 1000-line one.
_LISTED_PROBLEMS = 5


def _problem(error: Any, errors: list[Any]) -> tuple[str, str]:
    """Return (field, 'field: what is wrong') for one pydantic error among all of a request."""
    if error["type"] == "json_invalid":
        # pydantic locates a JSON syntax error as ("body", character offset), not as a field.
        reason = error.get("ctx", {}).get("error", error["msg"])
        return "body", f"body: invalid JSON at character {error['loc'][-1]}: {reason}"
    field = field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        # A required field missing beside it is most likely what the caller meant.
        missing = [
            str(other["loc"][-1])
            for other in errors
            if other["type"] == "missing" and other["loc"][:-1] == error["loc"][:-1]
        ]
        close = difflib.get_close_matches(str(error["loc"][-1]), missing, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return field, f"{field}: unknown field{hint}"
    return field, f"{field}: {error['msg']}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # An unknown field first: a misspelt name also makes the real one "missing", and the
    # typo is the cause the caller has to see.
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    problems = [_problem(error, errors) for error in errors]
    message = "; ".join(text for _, text in problems[:_LISTED_PROBLEMS])
    if len(problems) > _LISTED_PROBLEMS:
        message += f" (and {len(problems) - _LISTED_PROBLEMS} more problems)"
    return error_response(422, "invalid_request", message, problems[0][0])


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> set[str]:
    """Return every method some route serves at the request's path."""
    # Ask each route whether it would take the request under another method: only the
    # public matches() works across routers (FastAPI keeps included routers nested).
    return {
        method
        for method in _METHODS
        if any(
            route.matches(dict(request.scope, method=method))[0] is Match.FULL
            for route in request.app.router.routes
        )
    }


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route matching the path only; a path
        # served by several routes (GET and DELETE /v1/stats) must list them all.
        allowed = _allowed_methods(request)
        # Nothing, or the method itself, allowed: a mounted app (the docs' static files)
        # refused the request, and its own answer stands.
        if allowed and request.method not in allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI's answer when the body is not text json can decode (e.g. not UTF-8).
        message = f"body: cannot be decoded as JSON: {exc.__cause__}"
        return error_response(400, code, message, "body", headers=headers or None)
    return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field)


# Each engine refusal's HTTP status; the engine itself knows nothing of HTTP.
_ENGINE_STATUS: dict[type[EngineError], int] = {InvalidRequest: 422, NotFound: 404}


async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EngineError)
    return error_response(_ENGINE_STATUS[type(exc)], exc.code, exc.message, exc.field)


async def _dimension_mismatch(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "dimension_mismatch", str(exc), "embedding")


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def unavailable_error(exc: StoreUnavailable, method: str, path: str) -> tuple[str, str]:
    """Return the (code, message) of a 503 for a request the store could not serve.

    The code names the cause (lost connections and timeouts keep `redis_unavailable`).
    A write that fails may still have been applied: Redis may have run it and then failed
    to answer in time, or have applied one part of a batch before refusing the next.
    """
    code = "redis_unavailable" if exc.cause == "unavailable" else f"redis_{exc.cause}"
    if method in _READS:
        advice = "retry later"
    elif path == "/v1/feedback":
        advice = (
            "the batch may have been applied, in whole or in part: resend the same batch; "
            "events already applied come back as duplicates"
        )
    elif path == "/v1/admin/clusters/fit":
        advice = (
            "the fit may have been stored as a new clustering generation: check the "
            "generation (GET /v1/arms) before fitting again"
        )
    else:
        advice = (
            "the write may have been applied: resend the same request, which leaves the "
            "same state (a repeated DELETE of an item then answers 404)"
        )
    return code, f"{CAUSES[exc.cause]}; {advice}"


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailable)
    if exc.cause == "unavailable":
        # The outage itself is logged once, by the snapshot refresh (engine/outage.py).
        log.debug("redis unavailable on %s: %s", request.url.path, exc)
    else:
        # A server state may refuse writes only, which the refresh (reads) never sees.
        log.warning("redis refused %s: %s", request.url.path, exc)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    code, message = unavailable_error(exc, request.method, route)
    return error_response(503, code, message)


def stream_error(exc: Exception, method: str, path: str) -> dict[str, Any]:
    """Return the error shape of a failure after a response started streaming (status 200).

    A store failure keeps its 503 code and message; anything else is a bug, logged here.
    """
    if isinstance(exc, StoreUnavailable):
        log.warning("redis unavailable during the stream of %s: %s", path, exc)
        return error_body(*unavailable_error(exc, method, path))
    log.error("unhandled error during the stream of %s", path, exc_info=exc)
    return error_body("internal", "internal error")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one JSON shape."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(DimensionMismatch, _dimension_mismatch)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)
