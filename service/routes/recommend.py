"""Ranked lists for a user."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep, WriteAccess
from service.openapi import error_responses, problem
from service.responses import ModelResponse
from service.schemas import RecommendRequest, RecommendResponse

router = APIRouter(prefix="/v1", tags=["recommend"])


@router.post(
    "/recommend",
    summary="Recommend a ranked list to a user",
    dependencies=[WriteAccess],
    response_model=RecommendResponse,
    responses=error_responses(
        400,
        401,
        413,
        422,
        invalid=[
            problem("invalid_request", "surfce: unknown field", "surfce"),
            problem("unknown_item", "not in the catalog: i404", "candidates"),
        ],
    ),
)
async def recommend(request: RecommendRequest, engine: EngineDep) -> ModelResponse:
    """Rank candidates with the user's cluster bandits and seen decay; log the list as rec_id.

    Candidates: on `surface: home` every active item, or only `candidates`, or only the items
    of `pool`; on `surface: related` the `BANDITREC_RELATED_N` active items most similar to
    `item_id` by embedding. `exclude` removes items from either. The user's clusters come
    from the embeddings of the items they clicked last. Under the bandit policy each
    candidate's score is a draw from the Beta posterior of those clusters times the user's
    seen-decay multiplier, and the k best are listed; `policy` says when exploration or the
    baseline chose the list instead. `pools` reserves places for items of given pools
    before the rest is filled from all candidates.

    The list is logged under `rec_id` (for `BANDITREC_REC_LOG_TTL_S`) with each item's
    propensity; name it in `/v1/feedback`. An empty list is still a 200: `reason` says why.
    When Redis is unreachable the list is served from the last snapshot with `stale: true`
    rather than refused.
    """
    return ModelResponse(await engine.recommender.recommend(request))
