"""Operator actions."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import RecommenderDep, WriteAccess
from service.schemas import FitRequest, FitResult

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[WriteAccess])


@router.post("/clusters/fit")
async def fit_clusters(request: FitRequest, recommender: RecommenderDep) -> FitResult:
    """Fit k-means on users' vectors and start a new clustering generation."""
    return await recommender.fit_clusters(request)
