"""Ranked lists for a user."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep, WriteAccess
from service.schemas import RecommendRequest, RecommendResponse

router = APIRouter(prefix="/v1", tags=["recommend"])


@router.post("/recommend", dependencies=[WriteAccess])
async def recommend(request: RecommendRequest, engine: EngineDep) -> RecommendResponse:
    """Rank candidates with the user's cluster bandit and seen decay; log the list as rec_id."""
    return await engine.recommender.recommend(request)
