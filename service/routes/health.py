"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import EngineDep, MetricsDep
from service.errors import ApiError
from service.store import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Return ok while the process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(engine: EngineDep) -> dict[str, object]:
    """Return ok when Redis answers (503 otherwise), with the snapshot's age."""
    try:
        await engine.store.ping()
    except StoreUnavailable as exc:
        raise ApiError(503, "redis_unavailable", "redis is not reachable") from exc
    return {"status": "ok", "snapshot_age_s": round(engine.snapshot.age_s(), 3)}


@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: MetricsDep, engine: EngineDep) -> Response:
    """Return Prometheus text: this worker's metrics, then the bandit's (docs/metrics.md)."""
    metrics.snapshot_age.set(engine.snapshot.age_s())
    await engine.bandit_metrics.update()
    body = generate_latest(metrics.registry) + generate_latest(engine.bandit_metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
