"""Small builders for request bodies used across service tests."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

_event_ids = itertools.count()


def event(kind: str, user: str, item: str, rec_id: str | None = None, **extra: Any) -> dict:
    """Return a feedback event with a fresh event_id."""
    body = {"event_id": f"e{next(_event_ids)}", "type": kind, "user_id": user, "item_id": item}
    if rec_id is not None:
        body["rec_id"] = rec_id
    body.update(extra)
    return body


async def add_items(
    client: httpx.AsyncClient, ids: list[str], embeddings: list[list[float]] | None = None
) -> None:
    """Create items in one bulk call, asserting success."""
    items = [
        {"item_id": item_id, "embedding": None if embeddings is None else embeddings[n]}
        for n, item_id in enumerate(ids)
    ]
    response = await client.post("/v1/items/bulk", json={"items": items})
    assert response.status_code == 200, response.text


async def send(client: httpx.AsyncClient, events: list[dict], **kwargs: Any) -> httpx.Response:
    """Post a feedback batch."""
    return await client.post("/v1/feedback", json={"events": events}, **kwargs)


async def arm(client: httpx.AsyncClient, item_id: str) -> dict:
    """Return /v1/arms/{item_id}, asserting success."""
    response = await client.get(f"/v1/arms/{item_id}")
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def exported_lists(ndjson: str) -> list[dict]:
    """Return the served lists of a log export's body, asserting it ended whole."""
    *lines, trailer = [json.loads(line) for line in ndjson.splitlines()]
    assert trailer == {"end": True, "lines": len(lines)}, trailer
    return lines


async def stored_counts(
    client: Any, keys: Any, kind: str, gen: int | None = None, cluster: int | None = None
) -> dict[str, float]:
    """Return one count row as Redis holds it, summed over the count shards (no discounting)."""
    total: dict[str, float] = {}
    for shard in range(keys.shards):
        part = await client.hgetall(keys.arms(kind, gen, cluster, shard=shard))
        for item, value in part.items():
            name = item.decode() if isinstance(item, bytes) else item
            total[name] = total.get(name, 0.0) + float(value)
    return total


# URLs of the Redis Clusters tests started (tests/cluster): raw clients of them speak cluster.
CLUSTER_URLS: set[str] = set()


def raw_client(url: str) -> Any:
    """Return an asyncio client of the Redis, or the Redis Cluster, at `url`."""
    import redis.asyncio as redis
    from redis.asyncio.cluster import RedisCluster

    if url in CLUSTER_URLS:
        return RedisCluster.from_url(url)
    return redis.Redis.from_url(url)
