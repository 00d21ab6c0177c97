"""Users' click histories, read in bulk for a k-means fit."""

from __future__ import annotations

from service.store.codecs import text
from service.store.connection import Client
from service.store.keys import Keys, tagged_id

# Keys per SCAN page and per pipelined read.
_BATCH = 1000


async def click_histories(
    client: Client, keys: Keys, limit: int, history_n: int
) -> dict[str, list[str]]:
    """Return up to `limit` users' newest `history_n` clicked items (SCAN order)."""
    found: dict[str, list[str]] = {}
    batch: list[str] = []

    async def flush() -> None:
        async with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.lrange(key, 0, history_n - 1)
            lists = await pipe.execute()
        for key, items in zip(batch, lists, strict=True):
            if items:
                found[tagged_id(key)] = [text(i) for i in items]
        batch.clear()

    async for raw_key in client.scan_iter(match=keys.every_user_clicks, count=_BATCH):
        batch.append(text(raw_key))
        if len(batch) >= _BATCH:
            await flush()
        if len(found) + len(batch) >= limit:
            break
    if batch:
        await flush()
    return dict(list(found.items())[:limit])
