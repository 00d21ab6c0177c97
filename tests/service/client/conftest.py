"""Fixtures: the app behind an httpx transport (async client), or on a real port (blocking)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from evaluation.child import HOST, free_port
from service.client import AsyncClient, Retry
from service.config import Settings
from service.main import create_app
from service.store import Store

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


class Served:
    """The app served by uvicorn on a free port, in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(
            create_app(settings, seed=0), host=HOST, port=self.port, log_level="warning",
            lifespan="on", ws="none", http="h11",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


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
