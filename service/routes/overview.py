"""What a worker serves from, in one read: the dashboard's overview."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep, ReadAccess
from service.schemas import Overview

router = APIRouter(prefix="/v1", tags=["stats"])


@router.get("/overview", dependencies=[ReadAccess])
async def overview(engine: EngineDep) -> Overview:
    """Return catalog size, the clustering, counted events and the snapshot's age."""
    return engine.views.overview()
