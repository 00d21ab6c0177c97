"""Counts sharded by event: tags spread over the slots, sums exact, one decision per batch."""

from __future__ import annotations

import zlib

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from service.store import ArmEvent, ShardPosition, Store, Verdict, dedupe
from service.store.counts import sum_parts
from service.store.keys import LEGACY_TAG, Keys, shard_tags
from tests.service.helpers import add_items, arm, event, raw_client, send, stored_counts

NOW = 1712345678.125
HOUR = 3600.0


@pytest.mark.parametrize("shards", [1, 3, 16, 64])
def test_shard_tags_spread_evenly_over_the_slots_and_keep_the_legacy_tag(shards):
    tags = shard_tags(shards)
    assert len(set(tags)) == shards and LEGACY_TAG in tags
    width = REDIS_CLUSTER_HASH_SLOTS / shards
    slots = [key_slot(tag.encode()) for tag in tags]
    # Shard s sits in the s-th equal slot range: masters owning equal ranges hold equal
    # numbers of shards (the legacy tag is in its own range too, wherever it falls).
    assert [int(slot // width) for slot in slots] == list(range(shards))
    assert shard_tags(shards) == tags  # the same in every process


def test_an_event_goes_to_the_shard_of_its_ids_crc32():
    keys = Keys("br", 16)
    assert keys.shard_of("ev-1") == zlib.crc32(b"ev-1") % 16
    shard = keys.shard_of("ev-1")
    assert keys.marker("ev-1") == f"br:{{{keys.tag(shard)}}}:ev:ev-1"
    assert keys.arms("clk", shard=shard).startswith(f"br:{{{keys.tag(shard)}}}:")


def test_discounted_parts_sum_at_the_latest_of_their_times():
    parts = {
        # 4 an hour before 2: the 4 weighs 2 by then; the part without a time fades from
        # its shard's decay-since (half an hour before the latest).
        "a": [(4.0, NOW - HOUR, None), (2.0, NOW, None), (1.0, None, NOW - HOUR / 2)],
        "b": [(3.0, None, None)],  # one part alone: as stored
        "c": [(1.0, None, None), (2.0, None, None)],  # never discounted: a plain sum
    }
    summed = sum_parts(parts, HOUR)
    assert summed["a"] == (pytest.approx(4.0 * 0.5 + 2.0 + 1.0 * 0.5**0.5), NOW)
    assert summed["b"] == (3.0, None)
    assert summed["c"] == (3.0, None)
    # Without discounting, whatever the times: the plain sum.
    assert sum_parts(parts, 0.0)["a"][0] == 7.0


@pytest.mark.anyio
async def test_a_batch_is_counted_with_one_write_per_touched_count(flushed, redis_url):
    store = Store(redis_url, shards=1)
    shares = ((0, 250_000), (1, 750_000))
    arm_events = [ArmEvent(f"e{n}", "u", "click", "a", 3, shares) for n in range(5)]
    arm_events.append(ArmEvent("e5", "u", "impression", "a", 3, shares))
    verdicts = await store.record_feedback(
        arm_events,
        {},
        now=NOW,
        retention_s=86400,
        seen_half_life_s=HOUR,
        history_n=10,
        user_ttl_s=86400,
        user_events_max=1000,
        user_items_max=500,
    )
    assert verdicts == [Verdict.NEW] * 6
    (change,) = await store.read_changes((ShardPosition(0, "0-0"),), 10)
    # One token per (gen, kind, item): the batch's increments summed.
    assert [(d.kind, d.added, d.clusters) for d in change.deltas] == [
        ("clk", 5.0, ((0, 1_250_000.0), (1, 3_750_000.0))),
        ("imp", 1.0, ((0, 250_000.0), (1, 750_000.0))),
    ]
    client = raw_client(redis_url)
    assert await stored_counts(client, store.keys, "clk", 3, 1) == {"a": 3_750_000.0}
    await client.aclose()
    await store.close()


@pytest.mark.anyio
async def test_a_claimed_event_in_one_shard_stops_the_writes_of_every_shard(svc, redis_url):
    await add_items(svc.client, ["a", "b"])
    taken = event("click", "u1", "a")
    assert (await send(svc.client, [taken])).json()["accepted"] == 1
    keys = svc.app.state.engine.store.keys
    batch = [event("impression", "u2", "b") for _ in range(40)]
    assert len({keys.shard_of(e["event_id"]) for e in batch}) > 1
    batch.append({**taken, "user_id": "u2"})
    response = await send(svc.client, batch)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "event_id_conflict"
    # Nothing of the batch was written, in any shard.
    assert (await arm(svc.client, "b"))["global"]["impressions"] == 0
    client = raw_client(redis_url)
    markers = [key async for key in client.scan_iter(match=keys.every_marker)]
    await client.aclose()
    assert len(markers) == 1


@pytest.mark.anyio
async def test_the_race_after_the_marker_check_leaves_counts_exact(svc, monkeypatch):
    # Another batch claims an event_id between this batch's marker check and its scripts
    # (simulated: the check sees no markers). Its shard writes nothing and the batch is
    # refused; other shards' events are counted, and resending without the claimed
    # event counts nothing twice (store/dedupe.py).
    await add_items(svc.client, ["a", "b"])
    taken = event("click", "u1", "a")
    assert (await send(svc.client, [taken])).json()["accepted"] == 1

    async def unseen(client, keys, arm_events):
        return {}

    monkeypatch.setattr(dedupe, "markers", unseen)
    keys = svc.app.state.engine.store.keys
    rest = [event("impression", "u2", "b") for _ in range(40)]
    rest = [e for e in rest if keys.shard_of(e["event_id"]) != keys.shard_of(taken["event_id"])]
    refused = await send(svc.client, [*rest, {**taken, "user_id": "u2"}])
    assert refused.status_code == 422
    counted = (await arm(svc.client, "b"))["global"]["impressions"]
    assert counted == len(rest)
    monkeypatch.undo()
    resent = await send(svc.client, rest)
    assert resent.json()["accepted"] == 0
    assert (await arm(svc.client, "b"))["global"]["impressions"] == len(rest)
    assert (await arm(svc.client, "a"))["global"]["clicks"] == 1
