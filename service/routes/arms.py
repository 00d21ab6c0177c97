"""Live view of the posteriors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.deps import EngineDep, ReadAccess
from service.schemas import ID_PATTERN, ArmList, ItemArms

router = APIRouter(prefix="/v1/arms", tags=["arms"], dependencies=[ReadAccess])


@router.get("/{item_id}", response_model_by_alias=True)
async def item_arms(
    item_id: Annotated[str, Path(pattern=ID_PATTERN)], engine: EngineDep
) -> ItemArms:
    """Return the item's global arm and its arm in every cluster."""
    return await engine.views.item_arms(item_id)


@router.get("")
async def list_arms(
    engine: EngineDep,
    cluster: Annotated[int | None, Query(ge=0, le=255, description="Omit for global arms.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ArmList:
    """Return one page of a cluster's arms, best posterior mean first."""
    return await engine.views.list_arms(cluster, limit, offset)
