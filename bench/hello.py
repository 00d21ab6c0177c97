"""The hello-world baseline: a FastAPI app with the recommend path and no work behind it."""

from __future__ import annotations

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    """Return an app whose POST /v1/recommend parses the JSON body and answers a constant."""
    app = FastAPI()

    @app.post("/v1/recommend")
    async def recommend(request: Request) -> dict[str, str]:
        await request.json()  # the baseline parses the same body
        return {"hello": "world"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
