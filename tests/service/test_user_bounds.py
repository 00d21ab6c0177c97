"""What one user keeps is bounded by settings, whatever their rate: events, seen items, clicks."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio


@pytest.fixture
async def raw(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class _Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_heavy_users_event_set_keeps_the_newest_ids(start, raw):
    # Issue 12, memory: one heavy user's event set reached 2.3 MB until its next write.
    running = await start(user_events_max=1000)
    await add_items(running.client, ["a"])
    batches = [[event("impression", "heavy", "a") for _ in range(1000)] for _ in range(3)]
    for batch in batches:
        assert (await send(running.client, batch)).status_code == 200
    events_key = "br:u:{heavy}:events"
    assert await raw.zcard(events_key) == 1000
    kept = {member.decode() for member in await raw.zrange(events_key, 0, -1)}
    assert kept == {e["event_id"] for e in batches[-1]}
    # A resend of the newest batch still leaves the user's state alone.
    seen = await raw.hget("br:u:{heavy}:seen", "a")
    assert (await send(running.client, batches[-1])).json()["duplicates"] == 1000
    assert await raw.hget("br:u:{heavy}:seen", "a") == seen


async def test_the_seen_hash_drops_the_least_penalised_items(start, raw):
    running = await start(user_items_max=10)
    often = [f"h{n}" for n in range(5)]
    once = [f"l{n:02d}" for n in range(20)]
    await add_items(running.client, often + once)
    batch = [event("impression", "u", item) for item in often for _ in range(3)]
    batch += [event("impression", "u", item) for item in once]
    assert (await send(running.client, batch)).status_code == 200
    seen = {k.decode() for k in await raw.hkeys("br:u:{u}:seen")}
    # Past 10 items the hash keeps its most penalised 9 (90%): the items seen 3 times,
    # then, among equals, the greatest ids.
    assert seen == {*often, "l16", "l17", "l18", "l19"}
    user = (await running.client.get("/v1/users/u")).json()
    assert {s["item_id"] for s in user["seen"]} == seen


async def test_last_clicks_drop_the_oldest(start, raw):
    running = await start(user_items_max=10)
    clock = _Clock(1_800_000_000.0)
    running.recommender.clock = clock
    items = [f"i{n:02d}" for n in range(12)]
    await add_items(running.client, items)
    for item in items:
        clock.now += 60
        assert (await send(running.client, [event("click", "u", item)])).status_code == 200
    kept = {k.decode() for k in await raw.hkeys("br:u:{u}:lastclick")}
    # The 11th click passed 10: the 2 oldest went, down to 9; the 12th made 10 again.
    assert kept == set(items[2:])


async def test_an_oversized_hash_of_an_earlier_release_is_trimmed_at_the_next_write(start, raw):
    running = await start(user_items_max=10)
    await add_items(running.client, ["a"])
    await raw.hset(
        "br:u:{old}:seen",
        # As earlier releases wrote them: without the plain unclicked count.
        mapping={f"x{n}": f"{1.0 + n / 10_000:.6f}|1800000000.000" for n in range(2500)},
    )
    assert (await send(running.client, [event("click", "old", "a")])).status_code == 200
    kept = {k.decode() for k in await raw.hkeys("br:u:{old}:seen")}
    assert kept == {f"x{n}" for n in range(2491, 2500)}
