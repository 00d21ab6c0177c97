"""The hello-world baseline: a FastAPI app with the recommend path and no work behind it."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    """Return an app whose POST /v1/recommend answers a constant (same path and body as ours)."""
    app = FastAPI()

    @app.post("/v1/recommend")
    async def recommend() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
