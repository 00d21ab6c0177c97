"""The catalog: create, read and retire items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import EngineDep, WriteAccess
from service.schemas import ID_PATTERN, BulkItems, BulkResult, ItemBody, ItemOut

router = APIRouter(prefix="/v1/items", tags=["items"])
ItemId = Annotated[str, Path(pattern=ID_PATTERN, examples=["i1"])]


@router.put("/{item_id}", dependencies=[WriteAccess])
async def put_item(item_id: ItemId, item: ItemBody, engine: EngineDep) -> ItemOut:
    """Create or replace one item."""
    return await engine.items.put(item_id, item)


@router.post("/bulk", dependencies=[WriteAccess])
async def put_items(body: BulkItems, engine: EngineDep) -> BulkResult:
    """Create or replace up to 1000 items atomically (all or nothing)."""
    return await engine.items.put_many(body.items)


@router.get("/{item_id}")
async def get_item(item_id: ItemId, engine: EngineDep) -> ItemOut:
    """Return one item."""
    return await engine.items.get(item_id)


@router.delete("/{item_id}", status_code=204, dependencies=[WriteAccess])
async def delete_item(item_id: ItemId, engine: EngineDep) -> None:
    """Stop serving an item; its arm counts are kept and still shown in /v1/arms."""
    await engine.items.delete(item_id)
