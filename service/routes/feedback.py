"""Impressions and clicks: what the bandit learns from."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import RecommenderDep, WriteAccess
from service.schemas import FeedbackBatch, FeedbackResult

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", dependencies=[WriteAccess])
async def feedback(batch: FeedbackBatch, recommender: RecommenderDep) -> FeedbackResult:
    """Count each new event once; replays of an event_id are reported as duplicates."""
    return await recommender.feedback(batch)
