"""What a worker serves from, in one read: the dashboard's overview."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep, ReadAccess
from service.openapi import error_responses
from service.stats_schemas import Overview

router = APIRouter(prefix="/v1", tags=["stats"])


@router.get(
    "/overview",
    summary="Overview of what this worker serves from",
    dependencies=[ReadAccess],
    responses=error_responses(401),
)
async def overview(engine: EngineDep) -> Overview:
    """Return catalog size, the clustering, counted events and the snapshot's age.

    Read from this worker's in-process snapshot, without a Redis call, so it answers while
    Redis is down (then `snapshot_age_s` grows). The dashboard's overview polls it.
    """
    return engine.views.overview()
