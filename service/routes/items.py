"""The catalog: create, read and retire items."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path

from service.deps import RecommenderDep, StoreDep, WriteAccess
from service.errors import ApiError
from service.schemas import ID_PATTERN, BulkItems, BulkResult, ItemBody, ItemOut
from service.store import ItemRecord

router = APIRouter(prefix="/v1/items", tags=["items"])
ItemId = Annotated[str, Path(pattern=ID_PATTERN, examples=["i1"])]


def _meta(item: ItemBody, now: float) -> dict[str, object]:
    return {"tags": item.tags, "pools": item.pools, "active": item.active, "updated": now}


def _as_stored(embedding: object) -> list[float] | None:
    # Embeddings are kept as float32; show each value as the shortest decimal that
    # round-trips to that float32 (0.9, not 0.8999999761581421), in PUT and GET alike.
    if embedding is None:
        return None
    return [float(str(x)) for x in np.asarray(embedding, dtype=np.float32)]


def _out(record: ItemRecord) -> ItemOut:
    return ItemOut(
        item_id=record.item_id,
        embedding=_as_stored(record.embedding),
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
    fields = item.model_dump() | {"embedding": _as_stored(item.embedding)}
    return ItemOut(item_id=item_id, updated=now, **fields)


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
