"""The serving policies (bandit, exploration, baseline) compared online."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import EngineDep, ReadAccess, WriteAccess
from service.schemas import StatsOut

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get("", dependencies=[ReadAccess])
async def get_stats(engine: EngineDep) -> StatsOut:
    """Return each policy's lists, impressions, clicks and CTR, plus agreement and replay."""
    return await engine.views.stats()


@router.delete("", status_code=204, dependencies=[WriteAccess])
async def reset_stats(engine: EngineDep) -> Response:
    """Start the counters afresh (e.g. after switching BANDITREC_MODE)."""
    await engine.store.reset_stats()
    return Response(status_code=204)
