"""The FastAPI app factory; startup and shutdown happen in lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.config import Settings
from service.engine import Engine
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import BodySizeLimit, RequestLog, RequestMetrics
from service.openapi import DESCRIPTION, TAGS
from service.routes import admin, arms, feedback, health, items, overview, recommend, stats, users
from service.routes.dashboard import install_dashboard
from service.routes.docs import install_docs
from service.store import Store, StoreUnavailable

log = logging.getLogger("banditrec")


def create_app(settings: Settings | None = None, seed: int | None = None) -> FastAPI:
    """Return the banditrec app; Redis is reached at startup, not at import."""
    settings = settings or Settings()
    if settings.redis_url is None:
        raise ValueError(
            "BANDITREC_REDIS_URL is unset: run `banditrec serve`, which starts an embedded Redis"
        )
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.redis_url or "", **settings.store_options())
        engine = Engine(settings, store, metrics, seed=seed)
        app.state.engine = engine
        try:
            await engine.refresh()
        except StoreUnavailable as exc:
            # Start anyway: /readyz says 503 and the refresh loop keeps trying.
            engine.snapshots.outage.failed(exc)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.snapshots.run(stop), name="snapshot-refresh")
        try:
            yield
        finally:
            stop.set()
            await task
            await engine.pending_lists.close()
            await store.close()

    app = FastAPI(
        title="banditrec",
        version="0.1.0",
        summary="Per-cluster Thompson-sampling recommendations with seen decay.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    install_docs(app)
    install_dashboard(app)
    # Each route declares the error statuses it can answer with (service/openapi.py).
    for module in (items, recommend, feedback, arms, users, stats, overview, admin, health):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    # Outermost, so that every response (a 413 included) carries the request id.
    app.add_middleware(RequestLog)
    return app
