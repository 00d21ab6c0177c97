"""The one error shape, {"error": {"code", "message", "field"}}, and the handlers that emit it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.engine.errors import EngineError, InvalidRequest, NotFound
from service.store import DimensionMismatch, StoreUnavailable

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


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: Any = None
) -> JSONResponse:
    """Return the JSON error response."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def field_path(loc: Sequence[str | int]) -> str:
    """Return a pydantic location as a readable path, e.g. events[3].item_id."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first, *rest = exc.errors()
    field = field_path(first["loc"])
    message = f"{field}: {first['msg']}"
    if rest:
        message += f" (and {len(rest)} more problem{'s' if len(rest) > 1 else ''})"
    return error_response(422, "invalid_request", message, field)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


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


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The outage itself is logged once, by the snapshot refresh (engine/outage.py).
    log.debug("redis unavailable on %s: %s", request.url.path, exc)
    return error_response(
        503, "redis_unavailable", "state store unavailable; nothing was written, retry later"
    )


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
