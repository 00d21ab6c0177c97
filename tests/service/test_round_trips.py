"""Recommend costs a fixed number of Redis commands, whatever the catalog size."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio


async def _commands(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    finally:
        await client.aclose()


async def _commands_per_recommend(running, url: str, n_items: int) -> float:
    for start in range(0, n_items, 1000):
        await add_items(running.client, [f"i{n}" for n in range(start, min(n_items, start + 1000))])
    await send(running.client, [event("impression", "u", "i0"), event("click", "u", "i1")])
    await running.refresh()
    before = await _commands(url)
    for n in range(20):
        response = await running.client.post("/v1/recommend", json={"user_id": "u", "k": 10})
        assert len(response.json()["items"]) == 10, n
    return (await _commands(url) - before) / 20


async def test_recommend_round_trips_do_not_grow_with_the_catalog(start, redis_url):
    # A long snapshot period keeps the background refresh out of the count.
    small = await _commands_per_recommend(
        await start(snapshot_ms=600_000, stale_after_s=700), redis_url, 20
    )
    large = await _commands_per_recommend(
        await start(snapshot_ms=600_000, stale_after_s=700), redis_url, 5000
    )
    # One pipelined read (3 user keys + catalog version + clustering generation), then one
    # pipelined write (the log; +2 when the user's cached cluster is refreshed).
    assert small == large <= 8


async def test_openapi_documents_the_error_shape(svc):
    spec = (await svc.client.get("/openapi.json")).json()
    feedback = spec["paths"]["/v1/feedback"]["post"]["responses"]
    assert feedback["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    assert "examples" in str(spec["components"]["schemas"]["FeedbackBatch"])
    assert (await svc.client.get("/docs")).status_code == 200


async def _commands_by_name(url: str) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    finally:
        await client.aclose()


async def test_feedback_naming_logged_lists_reads_no_user(start, redis_url):
    running = await start(snapshot_ms=600_000, stale_after_s=700)
    await add_items(running.client, [f"i{n}" for n in range(20)])
    await running.refresh()
    events = []
    for n in range(10):
        body = (await running.client.post("/v1/recommend", json={"user_id": f"u{n}"})).json()
        item = body["items"][0]["item_id"]
        events.append(event("impression", f"u{n}", item) | {"rec_id": body["rec_id"]})
    await running.app.state.engine.pending_lists.flush()
    before = await _commands_by_name(redis_url)
    result = (await send(running.client, events)).json()
    assert result == {"accepted": 10, "duplicates": 0, "unknown_rec_ids": []}
    after = await _commands_by_name(redis_url)
    # Neither the state hashes (HGETALL) nor the click lists (LRANGE) of the ten users.
    assert after.get("lrange", 0) == before.get("lrange", 0)
    assert after.get("hgetall", 0) == before.get("hgetall", 0)
    # Without rec_ids the same users are read: one state and one click list each.
    bare = [event("click", f"u{n}", "i0") for n in range(10)]
    assert (await send(running.client, bare)).json()["accepted"] == 10
    final = await _commands_by_name(redis_url)
    assert final["lrange"] - after.get("lrange", 0) == 10
