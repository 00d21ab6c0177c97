"""What the service knows about a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import EngineDep, ReadAccess
from service.schemas import ID_PATTERN, UserOut

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get("/{user_id}", dependencies=[ReadAccess])
async def get_user(user_id: Annotated[str, Path(pattern=ID_PATTERN)], engine: EngineDep) -> UserOut:
    """Return the user's cluster, recent clicks and seen-decay penalties."""
    return await engine.views.user(user_id)
