"""The recommend floor: what any recommend must do, in banditrec's own kind of app.

Same FastAPI app shape as `service.main` (its three middlewares, its error handlers, the
write-access dependency, the same uvicorn flags from bench.server): POST /v1/recommend
validates the body as `RecommendRequest`, reads the user's state in one pipelined round
trip (`Store.read_users`, the keys and decoding recommend uses), and answers a constant
10-item list. Its req/s against hello-world says how close to hello-world any recommend
can get in this runtime (issue 14's first question).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Response

from service.config import Settings
from service.deps import WriteAccess
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import BodySizeLimit, RequestLog, RequestMetrics
from service.schemas import RecommendRequest
from service.store import Store

# A recommend response's shape, built once: the floor serialises nothing per request.
_LIST = json.dumps(
    {
        "rec_id": "floor",
        "user_id": "floor",
        "items": [{"item_id": f"i{n}", "score": 0.5, "propensity": 0.1} for n in range(10)],
    }
).encode()


def create_app() -> FastAPI:
    """Return the floor app; BANDITREC_REDIS_URL names the seeded Redis it reads.

    BENCH_FLOOR_READ=0 leaves the read out: the app shape's own cost.
    """
    settings = Settings()
    read = os.environ.get("BENCH_FLOOR_READ", "1") != "0"
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = Store(settings.redis_url or "", **settings.store_options())
        try:
            yield
        finally:
            await app.state.store.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)

    @app.post("/v1/recommend", dependencies=[WriteAccess])
    async def recommend(request: RecommendRequest) -> Response:
        if read:
            store: Store = app.state.store
            await store.read_users([request.user_id], settings.history_n)
        return Response(_LIST, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestLog)
    return app
