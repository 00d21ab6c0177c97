"""The catalog's writes and reads: items with tags, pools and embeddings."""

from __future__ import annotations

import time

import numpy as np

from service.engine.context import Context
from service.engine.errors import InvalidRequest, NotFound
from service.engine.refresh import Snapshots
from service.schemas import BulkResult, ItemBody, ItemIn, ItemOut
from service.store import ItemRecord
from service.store.codecs import item_meta


class Items:
    """Creates, reads and retires catalog items; a write is read back by this worker at once."""

    def __init__(self, ctx: Context, snapshots: Snapshots) -> None:
        self.ctx = ctx
        self.snapshots = snapshots

    async def put(self, item_id: str, item: ItemBody) -> ItemOut:
        """Create or replace one item; return it as stored."""
        now = time.time()
        await self.ctx.store.upsert_items([(item_id, _meta(item, now), item.embedding)])
        await self.snapshots.refresh_after_write()
        fields = item.model_dump() | {"embedding": _as_stored(item.embedding)}
        return ItemOut(item_id=item_id, updated=now, **fields)

    async def put_many(self, items: list[ItemIn]) -> BulkResult:
        """Create or replace items atomically (all or nothing); refuse an id given twice."""
        ids = [item.item_id for item in items]
        if len(set(ids)) != len(ids):
            duplicate = next(i for n, i in enumerate(ids) if i in ids[:n])
            index = ids.index(duplicate, ids.index(duplicate) + 1)
            raise InvalidRequest(
                "duplicate_item", f"item {duplicate!r} appears twice", f"items[{index}].item_id"
            )
        now = time.time()
        dim = await self.ctx.store.upsert_items(
            [(i.item_id, _meta(i, now), i.embedding) for i in items]
        )
        await self.snapshots.refresh_after_write()
        return BulkResult(upserted=len(items), dim=dim or None)

    async def get(self, item_id: str) -> ItemOut:
        """Return one item as stored."""
        record = await self.ctx.store.get_item(item_id)
        if record is None:
            raise NotFound("not_found", f"item {item_id!r} is not in the catalog", "item_id")
        return _out(record)

    async def delete(self, item_id: str) -> None:
        """Stop serving an item; its arm counts are kept."""
        if not await self.ctx.store.delete_item(item_id):
            raise NotFound("not_found", f"item {item_id!r} is not in the catalog", "item_id")
        await self.snapshots.refresh_after_write()


def _meta(item: ItemBody, now: float) -> dict[str, object]:
    return item_meta(item.tags, item.pools, item.active, now)


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
