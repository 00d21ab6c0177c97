"""The API's errors as exceptions: one class per status, each carrying the API's code and field."""

from __future__ import annotations

import json

import httpx


class BanditrecError(Exception):
    """An error answered by the service (or no answer at all: status None)."""

    def __init__(
        self, status: int | None, code: str, message: str, field: str | None = None
    ) -> None:
        super().__init__(f"{status or 'no answer'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class BadRequest(BanditrecError):
    """400: the request could not be read."""


class Unauthorized(BanditrecError):
    """401: the route needs the API key and it was missing or wrong."""


class NotFound(BanditrecError):
    """404: no such item, route or cluster."""


class PayloadTooLarge(BanditrecError):
    """413: the body is larger than BANDITREC_MAX_BODY_BYTES."""


class InvalidRequest(BanditrecError):
    """422: a field failed its bounds or names something unknown; `field` says which."""


class ServerError(BanditrecError):
    """500 and other 5xx answers that are not worth retrying."""


class Unavailable(BanditrecError):
    """503 (or a proxy's 502/504): Redis or the service is down; retried before it is raised."""


class ConnectionFailed(BanditrecError):
    """No answer: the connection failed or timed out on every attempt."""


_BY_STATUS: dict[int, type[BanditrecError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    413: PayloadTooLarge,
    422: InvalidRequest,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_from(response: httpx.Response) -> BanditrecError:
    """Return the exception for an error answer, read from its {"error": {...}} body."""
    status = response.status_code
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else BanditrecError)
    try:
        body = json.loads(response.content)["error"]
        code, message, field = str(body["code"]), str(body["message"]), body.get("field")
    except (ValueError, KeyError, TypeError):
        # Not the service's shape: a proxy's page, or a body cut short.
        return kind(status, f"http_{status}", response.text[:200] or response.reason_phrase)
    return kind(status, code, message, None if field is None else str(field))


def connection_failed(exc: httpx.TransportError) -> ConnectionFailed:
    """Return the exception for a request that got no answer."""
    name = type(exc).__name__
    return ConnectionFailed(None, "connection_failed", f"{name}: {exc}" if str(exc) else name)
