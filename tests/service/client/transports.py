"""Transports around the real app that record requests and lose some on purpose.

The service behind them is real; only the network between client and service misbehaves.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


class Flaky(httpx.AsyncBaseTransport):
    """Records every request; raises `unsent` errors before sending and `lost` ones after."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        unsent: list[Exception] | None = None,
        lost: list[Exception] | None = None,
        on_response: Callable[[httpx.Response], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        self.unsent = list(unsent or [])
        self.lost = list(lost or [])
        self.on_response = on_response
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.unsent:
            raise self.unsent.pop(0)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.statuses.append(response.status_code)
        if self.on_response is not None:
            await self.on_response(response)
        if self.lost:
            raise self.lost.pop(0)  # the service acted; its answer never arrives
        return response

    def bodies(self, path: str) -> list[Any]:
        """Return the JSON bodies of the requests sent to `path`."""
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


class FlakySync(httpx.BaseTransport):
    """The blocking twin of Flaky: raises `unsent` errors before sending over a real socket."""

    def __init__(self, unsent: list[Exception] | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.unsent = list(unsent or [])
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.unsent:
            raise self.unsent.pop(0)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
