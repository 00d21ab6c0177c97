"""Operator actions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import StreamingResponse

from service.deps import EngineDep, WriteAccess
from service.schemas import FitRequest, FitResult

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[WriteAccess])

# Every field of a fit has a default, so the body may be left out altogether.
_DEFAULT_FIT = FitRequest()


@router.post("/clusters/fit")
async def fit_clusters(
    engine: EngineDep, request: Annotated[FitRequest, Body()] = _DEFAULT_FIT
) -> FitResult:
    """Fit k-means on users' vectors and start a new clustering generation."""
    return await engine.refits.fit(request)


@router.get(
    "/logs/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_logs(
    engine: EngineDep,
    since: Annotated[float | None, Query(ge=0, description="Unix time, inclusive.")] = None,
    until: Annotated[float | None, Query(ge=0, description="Unix time, exclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000_000)] = 1_000_000,
) -> StreamingResponse:
    """Stream logged served lists with propensities and feedback outcomes as NDJSON.

    One line per list still within the rec-log TTL, in no particular order:
    {rec_id, user_id, gen, cluster, ts, k, n_candidates,
     items: [{item_id, position, score, propensity, impression, click}]}.
    """
    lines = engine.views.export_logs(since, until, limit)
    first = await anext(lines, None)  # surfaces a Redis outage as 503, not a cut stream

    async def stream() -> AsyncIterator[str]:
        if first is not None:
            yield first
            async for line in lines:
                yield line

    return StreamingResponse(stream(), media_type="application/x-ndjson")
