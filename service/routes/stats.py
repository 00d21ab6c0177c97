"""The serving policies (bandit, exploration, baseline) compared online."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import EngineDep, ReadAccess, WriteAccess
from service.openapi import error_responses
from service.stats_schemas import StatsOut

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get(
    "",
    summary="Compare the serving policies",
    dependencies=[ReadAccess],
    responses=error_responses(401, 503),
)
async def get_stats(engine: EngineDep) -> StatsOut:
    """Return each policy's lists, impressions, clicks and CTR, plus agreement and replay.

    Counted from feedback that names a `rec_id`, per policy that served the list: the
    bandit, uniform exploration (`BANDITREC_EXPLORATION`) or the baseline
    (`BANDITREC_MODE=baseline`). `replay` estimates each policy's CTR on exploration lists,
    free of the bias of who chose what was shown.
    """
    return await engine.views.stats()


@router.delete(
    "",
    summary="Reset the policy counters",
    status_code=204,
    dependencies=[WriteAccess],
    responses=error_responses(401, 503),
)
async def reset_stats(engine: EngineDep) -> Response:
    """Start the counters afresh (e.g. after switching BANDITREC_MODE).

    Only the counters of /v1/stats are reset; arms, users and logs are untouched.
    """
    await engine.store.reset_stats()
    return Response(status_code=204)
