"""What the service knows about a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import EngineDep, ReadAccess
from service.openapi import bad_id, error_responses
from service.schemas import ID_PATTERN, UserOut

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get(
    "/{user_id}",
    summary="Read a user's state",
    dependencies=[ReadAccess],
    responses=error_responses(401, 422, 503, invalid=[bad_id("user_id")]),
)
async def get_user(
    user_id: Annotated[str, Path(pattern=ID_PATTERN, examples=["u42"])], engine: EngineDep
) -> UserOut:
    """Return the user's clusters, recent clicks and seen-decay penalties.

    `seen` lists the items shown without a click, most penalised first: `unclicked` is the
    decayed count of such impressions and `multiplier` what their sampled scores are
    multiplied by. An unknown user is not an error: it has no clicks and nothing seen.
    """
    return await engine.views.user(user_id)
