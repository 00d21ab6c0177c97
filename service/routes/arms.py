"""Live view of the posteriors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.deps import EngineDep, ReadAccess
from service.openapi import bad_id, error_responses, problem
from service.schemas import ID_PATTERN, ArmList, ItemArms

router = APIRouter(prefix="/v1/arms", tags=["arms"], dependencies=[ReadAccess])


@router.get(
    "/{item_id}",
    summary="Read an item's arms",
    response_model_by_alias=True,
    responses=error_responses(
        401,
        404,
        422,
        503,
        invalid=[bad_id("item_id")],
        missing=problem("not_found", "item 'i404' has no arm", "item_id"),
    ),
)
async def item_arms(
    item_id: Annotated[str, Path(pattern=ID_PATTERN, examples=["i2"])], engine: EngineDep
) -> ItemArms:
    """Return the item's global arm and its arm in every cluster, read from Redis now.

    Each arm has its counts (discounted when `BANDITREC_HALF_LIFE_H` is set; fractional in a
    cluster under soft membership), its Beta posterior (`alpha`, `beta`, `mean`, `ci95`)
    and its conversions per click. A deleted item's arm is still shown; 404 only for an id
    that has neither counts nor a catalog entry.
    """
    return await engine.views.item_arms(item_id)


_NO_SUCH_CLUSTER = problem(
    "unknown_cluster", "cluster 9 does not exist; the current clustering has k=8", "cluster"
)


@router.get(
    "",
    summary="List a cluster's arms",
    responses=error_responses(401, 422, 503, invalid=[_NO_SUCH_CLUSTER]),
)
async def list_arms(
    engine: EngineDep,
    cluster: Annotated[
        int | None, Query(ge=0, le=255, examples=[3], description="Omit for global arms.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, examples=[20])] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, examples=[0])] = 0,
) -> ArmList:
    """Return one page of a cluster's arms (or the global ones), best posterior mean first.

    Lists every catalog item and every item with counts, ties broken by id so that pages are
    stable. A cluster beyond the current clustering's k is a 422.
    """
    return await engine.views.list_arms(cluster, limit, offset)
