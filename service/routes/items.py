"""The catalog: create, read and retire items."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path

from service.deps import RecommenderDep, StoreDep, WriteAccess
from service.errors import ApiError
from service.schemas import ID_PATTERN, BulkItems, BulkResult, ItemBody, ItemOut
from service.store import ItemRecord

router = APIRouter(prefix="/v1/items", tags=["items"])
ItemId = Annotated[str, Path(pattern=ID_PATTERN, examples=["i1"])]


def _meta(item: ItemBody, now: float) -> dict[str, object]:
    return {"tags": item.tags, "pools": item.pools, "active": item.active, "updated": now}


def _out(record: ItemRecord) -> ItemOut:
    embedding = None if record.embedding is None else [float(x) for x in record.embedding]
    return ItemOut(
        item_id=record.item_id,
        embedding=embedding,
        tags=record.tags,
        pools=record.pools,
        active=record.active,
        updated=record.updated,
    )


@router.put("/{item_id}", dependencies=[WriteAccess])
async def put_item(
    item_id: ItemId, item: ItemBody, store: StoreDep, recommender: RecommenderDep
) -> ItemOut:
    """Create or replace one item."""
    now = time.time()
    await store.upsert_items([(item_id, _meta(item, now), item.embedding)])
    await recommender.refresh_after_write()
    return ItemOut(item_id=item_id, updated=now, **item.model_dump())


@router.post("/bulk", dependencies=[WriteAccess])
async def put_items(body: BulkItems, store: StoreDep, recommender: RecommenderDep) -> BulkResult:
    """Create or replace up to 1000 items atomically (all or nothing)."""
    ids = [item.item_id for item in body.items]
    if len(set(ids)) != len(ids):
        duplicate = next(i for n, i in enumerate(ids) if i in ids[:n])
        index = ids.index(duplicate, ids.index(duplicate) + 1)
        raise ApiError(
            422, "duplicate_item", f"item {duplicate!r} appears twice", f"items[{index}].item_id"
        )
    now = time.time()
    dim = await store.upsert_items([(i.item_id, _meta(i, now), i.embedding) for i in body.items])
    await recommender.refresh_after_write()
    return BulkResult(upserted=len(body.items), dim=dim or None)


@router.get("/{item_id}")
async def get_item(item_id: ItemId, store: StoreDep) -> ItemOut:
    """Return one item."""
    record = await store.get_item(item_id)
    if record is None:
        raise ApiError(404, "not_found", f"item {item_id!r} is not in the catalog", "item_id")
    return _out(record)


@router.delete("/{item_id}", status_code=204, dependencies=[WriteAccess])
async def delete_item(item_id: ItemId, store: StoreDep, recommender: RecommenderDep) -> None:
    """Stop serving an item; its arm counts are kept and still shown in /v1/arms."""
    if not await store.delete_item(item_id):
        raise ApiError(404, "not_found", f"item {item_id!r} is not in the catalog", "item_id")
    await recommender.refresh_after_write()
