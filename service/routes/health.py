"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import EngineDep, MetricsDep
from service.openapi import error_responses
from service.schemas import Liveness, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness probe")
async def healthz() -> Liveness:
    """Return ok while the process is up; it reads nothing, so it never fails on Redis."""
    return Liveness(status="ok")


@router.get("/readyz", summary="Readiness probe", responses=error_responses(503))
async def readyz(engine: EngineDep) -> Readiness:
    """Return ok when Redis takes a read and a write, with the snapshot's age; else 503.

    The 503's code names the cause: `redis_unavailable` (down or not answering), or a state
    in which Redis answers but refuses, such as `redis_out_of_memory` or `redis_read_only`
    (a PING would still succeed there: the probe reads and writes a small key with a TTL).
    A replica whose Redis is down still serves recommendations from its snapshot, marked
    `stale`; route traffic away on 503 only if stale lists are not acceptable.
    """
    await engine.store.probe_readiness()
    return Readiness(status="ok", snapshot_age_s=round(engine.snapshot.age_s(), 3))


@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: MetricsDep, engine: EngineDep) -> Response:
    """Return Prometheus text: this worker's metrics, then the bandit's (docs/metrics.md)."""
    metrics.snapshot_age.set(engine.snapshot.age_s())
    await engine.bandit_metrics.update()
    body = generate_latest(metrics.registry) + generate_latest(engine.bandit_metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
