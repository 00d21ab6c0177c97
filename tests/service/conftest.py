"""Fixtures for driving the ASGI app against real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.config import Settings
from service.main import create_app
from service.store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., Settings]:
    """Return a factory of Settings pointing at the test Redis."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"redis_url": redis_url, "snapshot_ms": 50}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def flushed(redis_url: str) -> None:
    """Start each test from an empty database."""
    store = Store(redis_url)
    await store.flush()
    await store.close()


class Running:
    """An app with its lifespan entered, and an HTTP client bound to it."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def recommender(self) -> Any:
        return self.app.state.engine

    async def refresh(self) -> None:
        """Make the snapshot current now instead of waiting for the background refresh."""
        await self.recommender.refresh()


@pytest.fixture
async def start(
    flushed: None, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory that starts an app with the given setting overrides."""
    stack: list[Any] = []

    async def _start(seed: int = 0, **overrides: Any) -> Running:
        app = create_app(make_settings(**overrides), seed=seed)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        stack.append((lifespan, client))
        return Running(app, client)

    yield _start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def svc(start: Callable[..., Any]) -> Running:
    """A running app with default settings."""
    running: Running = await start()
    return running
