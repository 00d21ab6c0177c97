"""The stored strings that Lua and Python both write or read agree on one format."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from service.store import ArmEvent, ShardPosition, StateWrite, Store, StoredUser, UserEvent, restore
from service.store.codecs import (
    UNKNOWN_OWNER,
    assigned_key,
    decode_counts,
    decode_last_click,
    decode_owner,
    decode_seen,
    encode_last_click,
    encode_owner,
    encode_seen,
    parse_assigned_key,
)
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio

NOW = 1712345678.125
HALF_LIFE_S = 3600.0


@pytest.fixture
async def store(flushed: None, redis_url: str):
    store = Store(redis_url)
    yield store
    await store.close()


@pytest.fixture
async def raw(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _feedback(store: Store, user_events: list[UserEvent], now: float, **kwargs) -> None:
    # The user side applies only events the counts side decided on, so count them too.
    arm_events = [
        ArmEvent(e.event_id, "u", e.kind, e.item_id, 0, ((0, 10**6),)) for e in user_events
    ]
    await store.record_feedback(
        arm_events,
        {"u": user_events},
        now=now,
        retention_s=86400,
        seen_half_life_s=HALF_LIFE_S,
        history_n=10,
        user_ttl_s=86400,
        user_events_max=1000,
        user_items_max=500,
        **kwargs,
    )


async def test_seen_and_last_clicks_written_by_lua_parse_with_the_codecs(store, raw):
    events = [
        UserEvent("e1", "impression", "a"),
        UserEvent("e2", "click", "b", "r1"),
        UserEvent("e3", "click", "c"),
    ]
    await _feedback(store, events, NOW)
    keys = store.keys
    assert decode_seen(await raw.hget(keys.user("u", "seen"), "a")) == (1.0, NOW, 1)
    last_clicks = keys.user("u", "lastclick")
    assert decode_last_click(await raw.hget(last_clicks, "b")) == (NOW, "r1")
    assert decode_last_click(await raw.hget(last_clicks, "c")) == (NOW, None)
    # Lua and Python write the very same text.
    assert await raw.hget(keys.user("u", "seen"), "a") == encode_seen(1.0, NOW, 1).encode()
    assert await raw.hget(last_clicks, "b") == encode_last_click(NOW, "r1").encode()
    assert await raw.hget(last_clicks, "c") == encode_last_click(NOW, None).encode()


async def test_seen_written_by_python_is_decayed_by_lua(store):
    user = StoredUser(
        user_id="u",
        state={},
        clicks=[],
        seen={"a": encode_seen(3.0, NOW, 3)},
        events=[],
        last_clicks={"b": encode_last_click(NOW, "r1")},
        expires_ms=None,
    )
    plan = StateWrite(1, 1, 0, 0, [], None, {}, {}, None, {}, {}, [], [user])
    await restore.write_state(store, plan, 0, replace=False)
    await _feedback(store, [UserEvent("e1", "impression", "a")], NOW + HALF_LIFE_S)
    users, _, _ = await store.read_users(["u"], 10, last_clicks_of={"u"})
    # Three unclicked impressions a half-life old weigh 1.5, plus this one; four in all.
    assert users["u"].seen == {"a": (2.5, NOW + HALF_LIFE_S, 4)}
    assert users["u"].last_clicks == {"b": (NOW, "r1")}


async def test_each_user_event_takes_effect_at_its_own_time(store, raw):
    # An import: past events in one batch, out of order; seen decays between their times.
    past = NOW - 10 * HALF_LIFE_S
    events = [
        UserEvent("e3", "click", "b", "r1", at=past + 2 * HALF_LIFE_S),
        UserEvent("e2", "impression", "a", at=past + HALF_LIFE_S),
        UserEvent("e1", "impression", "a", at=past),
        UserEvent("e4", "click", "c", at=past + 3 * HALF_LIFE_S),
    ]
    await _feedback(store, events, NOW)
    users, _, _ = await store.read_users(["u"], 10, last_clicks_of={"u"})
    assert users["u"].seen == {"a": (1.5, past + HALF_LIFE_S, 2)}
    assert users["u"].clicks == ["c", "b"]  # newest first, by time, not by batch order
    assert users["u"].last_clicks["b"] == (past + 2 * HALF_LIFE_S, "r1")
    # The dedupe set keeps the batch's time: the events are remembered from now.
    assert await raw.zscore(store.keys.user("u", "events"), "e1") == NOW


async def test_the_unclicked_count_does_not_fade_and_a_click_resets_both(store, raw):
    # An ignore 30 half-lives ago has faded to nothing; it still counts as one for the
    # learned decay (which reads its age), as the simulator counts it.
    old = NOW - 30 * HALF_LIFE_S
    await _feedback(store, [UserEvent("e1", "impression", "a", at=old)], old)
    await _feedback(store, [UserEvent("e2", "impression", "a")], NOW)
    users, _, _ = await store.read_users(["u"], 10)
    faded, updated, unclicked = users["u"].seen["a"]
    assert (faded, updated, unclicked) == (pytest.approx(1.0, abs=1e-6), NOW, 2)
    await _feedback(store, [UserEvent("e3", "click", "a")], NOW)
    await _feedback(store, [UserEvent("e4", "impression", "a")], NOW + 60)
    users, _, _ = await store.read_users(["u"], 10)
    assert users["u"].seen == {"a": (1.0, NOW + 60, 1)}


@pytest.mark.parametrize(("faded", "unclicked"), [(2.0, 2), (1.25, 2), (0.000001, 1), (0.0, 1)])
async def test_a_seen_value_of_an_earlier_release_counts_its_faded_count_rounded_up(
    store, raw, faded, unclicked
):
    """Values written before the plain count ('faded|updated') read as the buckets read
    them then: rounded up, at least one (an entry is an unclicked impression)."""
    legacy = f"{faded:.6f}|{NOW:.3f}"
    assert decode_seen(legacy) == (faded, NOW, unclicked)
    await raw.hset(store.keys.user("u", "seen"), "a", legacy)
    await _feedback(store, [UserEvent("e1", "impression", "a")], NOW)
    users, _, _ = await store.read_users(["u"], 10)
    # Lua reads it the same way, and writes the new form.
    assert users["u"].seen == {"a": (pytest.approx(faded + 1.0), NOW, unclicked + 1)}
    stored = await raw.hget(store.keys.user("u", "seen"), "a")
    assert stored == encode_seen(faded + 1.0, NOW, unclicked + 1).encode()


@pytest.mark.parametrize("half_life_s", [0.0, HALF_LIFE_S])
async def test_change_tokens_written_by_lua_parse_with_the_codecs(store, raw, half_life_s):
    shares = ((0, 250_000), (1, 750_000))
    arm_events = [ArmEvent("e1", "u", "click", "a:b|c", 7, shares)]
    await store.record_feedback(
        arm_events,
        {},
        now=NOW,
        retention_s=86400,
        seen_half_life_s=HALF_LIFE_S,
        history_n=10,
        user_ttl_s=86400,
        user_events_max=1000,
        user_items_max=500,
        count_half_life_s=half_life_s,
    )
    start = tuple(ShardPosition(0, "0-0") for _ in range(store.keys.shards))
    (change,) = await store.read_changes(start, 10)
    assert change.shard == store.keys.shard_of("e1")
    (delta,) = change.deltas
    assert (delta.gen, delta.kind, delta.item_id, delta.added) == (7, "clk", "a:b|c", 1.0)
    assert delta.clusters == ((0, 250_000.0), (1, 750_000.0))
    assert delta.at == (NOW if half_life_s else None)
    shard = store.keys.shard_of("e1")
    stored = decode_counts(await raw.hgetall(store.keys.arms("clk", 7, 1, shard=shard)))
    assert stored == {"a:b|c": 750_000.0}


def test_an_assigned_key_parses_back():
    assert parse_assigned_key(assigned_key(3, 12, "soft")) == (3, 12, "soft")
    for malformed in ("3:12", "x:12:soft", ""):
        with pytest.raises(ValueError):
            parse_assigned_key(malformed)


async def test_the_membership_cache_key_is_the_codecs_one(svc):
    await add_items(svc.client, ["a", "b"])
    await send(svc.client, [event("click", "u1", "a")])
    response = await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 1})
    assert response.status_code == 200, response.text
    await svc.app.state.engine.pending_lists.flush()  # cached with the list, after the response
    store: Store = svc.app.state.engine.store
    users, _, gen = await store.read_users(["u1"], 10)
    assert users["u1"].assigned is not None
    mode = svc.app.state.settings.membership
    assert parse_assigned_key(users["u1"].assigned) == (gen, 1, mode)
    assert users["u1"].assigned == assigned_key(gen, users["u1"].hist, mode)


async def test_dedupe_markers_written_by_lua_name_their_owner_as_the_codecs_say(store, raw):
    await _feedback(store, [UserEvent("e1", "impression", "a")], NOW)
    value = await raw.get(store.keys.marker("e1"))
    assert value == encode_owner("u").encode()
    assert decode_owner(value) == "u"
    # Markers of earlier releases hold "1": no owner, and no user's id (not even "1").
    assert decode_owner(UNKNOWN_OWNER) is None
    assert decode_owner(encode_owner("1")) == "1"


async def test_a_users_keys_live_the_ttl_past_their_last_event_with_fewer_expires(store, raw):
    keys = [store.keys.user("u", part) for part in ("state", "seen", "clicks", "events")]
    keys.append(store.keys.user("u", "lastclick"))
    ttl = 86400
    await _feedback(store, [UserEvent("e1", "impression", "a")], NOW)
    # A user who never clicked has only seen and events, and they get the TTL.
    assert [await raw.ttl(k) for k in keys] == [-2, ttl, -2, ttl, -2]
    await _feedback(store, [UserEvent("e2", "click", "a", "r1")], NOW)
    # (A click takes the item out of seen, here its only one.)
    assert [await raw.ttl(k) for k in keys] == [ttl, -2, ttl, ttl, ttl]
    # Impressions refresh what they write; the rest keeps its TTL while within 1% of it.
    for key in keys:
        await raw.expire(key, ttl - 100)
    await _feedback(store, [UserEvent("e3", "impression", "b")], NOW)
    assert [await raw.ttl(k) for k in keys] == [ttl - 100, ttl, ttl - 100, ttl, ttl - 100]
    # Run down further, an impression refreshes all five: no key outlives the others by
    # more than 1% of the TTL, nor expires while the user is active.
    await raw.expire(keys[2], ttl - ttl // 100 - 1)
    await _feedback(store, [UserEvent("e4", "impression", "c")], NOW)
    assert [await raw.ttl(k) for k in keys] == [ttl] * 5
