"""Ranked lists for a user."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import RecommenderDep, WriteAccess
from service.schemas import RecommendRequest, RecommendResponse

router = APIRouter(prefix="/v1", tags=["recommend"])


@router.post("/recommend", dependencies=[WriteAccess])
async def recommend(request: RecommendRequest, recommender: RecommenderDep) -> RecommendResponse:
    """Rank candidates with the user's cluster bandit and seen decay; log the list as rec_id."""
    return await recommender.recommend(request)
