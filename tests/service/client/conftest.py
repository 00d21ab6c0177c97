"""Fixtures: the app behind an httpx transport (async client), or on a real port (blocking)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from service.client import AsyncClient, Retry
from service.config import Settings
from service.store import Store
from tests.service.served import Served

# Short waits between tries: the tests exercise retries, not patience.
FAST = Retry(attempts=4, backoff_s=0.01, max_backoff_s=0.05)


@pytest.fixture
def make_async(svc: Any) -> Callable[..., AsyncClient]:
    """Return a factory of AsyncClients bound to the running app, in-process."""

    def make(transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> AsyncClient:
        options.setdefault("retry", FAST)
        return AsyncClient(
            "http://test", transport=transport or httpx.ASGITransport(app=svc.app), **options
        )

    return make


async def _flush(redis_url: str) -> None:
    store = Store(redis_url)
    await store.flush()
    await store.close()


@pytest.fixture
def served(
    redis_url: str, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., Served]]:
    """Return a factory that serves the app with setting overrides on a real port."""
    asyncio.run(_flush(redis_url))  # a blocking test: the async `flushed` fixture cannot run
    running: list[Served] = []

    def serve(**overrides: Any) -> Served:
        server = Served(make_settings(**overrides)).__enter__()
        running.append(server)
        return server

    yield serve
    for server in reversed(running):
        server.__exit__()
