"""Impressions and clicks: what the bandit learns from."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep, WriteAccess
from service.schemas import FeedbackBatch, FeedbackResult

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", dependencies=[WriteAccess])
async def feedback(batch: FeedbackBatch, engine: EngineDep) -> FeedbackResult:
    """Count each new event once; replays of an event_id are reported as duplicates."""
    return await engine.feedback.record(batch)
