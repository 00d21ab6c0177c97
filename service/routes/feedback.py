"""Impressions and clicks: what the bandit learns from."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import EngineDep, WriteAccess
from service.openapi import error_responses, problem
from service.responses import ModelResponse
from service.schemas import FeedbackBatch, FeedbackResult

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    summary="Report impressions, clicks and conversions",
    dependencies=[WriteAccess],
    response_model=FeedbackResult,
    responses=error_responses(
        400,
        401,
        413,
        422,
        503,
        invalid=[
            problem(
                "invalid_request",
                "events[0].evnt_id: unknown field (did you mean event_id?); "
                "events[0].event_id: Field required",
                "events[0].evnt_id",
            ),
            problem("unknown_item", "item 'i404' is not in the catalog", "events[0].item_id"),
        ],
    ),
)
async def feedback(batch: FeedbackBatch, engine: EngineDep) -> ModelResponse:
    """Count each new event once; replays of an event_id are reported as duplicates.

    Send an `impression` for every item the user was shown and a `click` for each one they
    opened; the arm's Beta posterior counts clicks against impressions without a click.
    A `conversion` (a purchase, a paid read) is tracked per arm and in /v1/stats.

    With `rec_id`, an event is credited to the clusters that list was served for, and the
    item must be one of that list (422 `item_not_served`) served to that user (422
    `rec_user_mismatch`). A conversion without `rec_id` follows the user's last click on the
    item within `BANDITREC_ATTRIBUTION_H`. Otherwise the user's current clusters are credited.

    The whole batch is validated first: one bad event (unknown item, `ts` out of range)
    refuses the batch with a 422 naming it, and nothing is written. An `event_id` is
    remembered for `BANDITREC_DEDUPE_RETENTION_S`, so a batch can be retried safely.
    """
    return ModelResponse(await engine.feedback.record(batch))
