"""The catalog: create, read and retire items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import EngineDep, WriteAccess
from service.openapi import bad_id, error_responses, problem
from service.schemas import ID_PATTERN, BulkItems, BulkResult, ItemBody, ItemOut

router = APIRouter(prefix="/v1/items", tags=["items"])
_MISSING = problem("not_found", "item 'i404' is not in the catalog", "item_id")
_BAD_EMBEDDING = [
    problem("invalid_request", "embedding[1]: Input should be a finite number", "embedding[1]"),
    problem("dimension_mismatch", "embedding has 2 dimensions, the catalog uses 3", "embedding"),
]
ItemId = Annotated[
    str, Path(pattern=ID_PATTERN, examples=["i1"], description="The caller's id of the item.")
]


@router.put(
    "/{item_id}",
    summary="Create or replace an item",
    dependencies=[WriteAccess],
    responses=error_responses(400, 401, 413, 422, 503, invalid=_BAD_EMBEDDING),
)
async def put_item(item_id: ItemId, item: ItemBody, engine: EngineDep) -> ItemOut:
    """Create or replace one item; return it as stored.

    Every field is replaced (an omitted field takes its default, not its old value). The
    embedding must have the dimension of the catalog's other embeddings (422
    `dimension_mismatch` otherwise); it is stored as float32. An inactive item
    (`active: false`) is kept but not served. The item can be recommended at once by this
    worker and by the others after their next snapshot refresh.
    """
    return await engine.items.put(item_id, item)


@router.post(
    "/bulk",
    summary="Create or replace many items at once",
    dependencies=[WriteAccess],
    responses=error_responses(
        400,
        401,
        413,
        422,
        503,
        invalid=[problem("duplicate_item", "item 'i1' appears twice", "items[1].item_id")],
    ),
)
async def put_items(body: BulkItems, engine: EngineDep) -> BulkResult:
    """Create or replace up to 1000 items atomically: all are written or none.

    Each item is replaced as by `PUT /v1/items/{item_id}`. An id given twice, or embeddings
    of different dimensions, refuse the whole batch (422) and write nothing.
    """
    return await engine.items.put_many(body.items)


@router.get(
    "/{item_id}",
    summary="Read an item",
    responses=error_responses(404, 422, 503, invalid=[bad_id("item_id")], missing=_MISSING),
)
async def get_item(item_id: ItemId, engine: EngineDep) -> ItemOut:
    """Return one item as stored, retired (inactive) or not; 404 if it was never put or deleted."""
    return await engine.items.get(item_id)


@router.delete(
    "/{item_id}",
    summary="Delete an item",
    status_code=204,
    dependencies=[WriteAccess],
    responses=error_responses(401, 404, 422, 503, invalid=[bad_id("item_id")], missing=_MISSING),
)
async def delete_item(item_id: ItemId, engine: EngineDep) -> None:
    """Remove an item from the catalog, so it is no longer served; 404 if it is not there.

    Its arm counts are kept and still shown in /v1/arms (putting the item again resumes
    them). To stop serving an item but keep it in the catalog, put it with `active: false`.
    """
    await engine.items.delete(item_id)
