"""The snapshot follows feedback by deltas and always equals a full read of the counts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.service.helpers import add_items, event, raw_client, send

pytestmark = pytest.mark.anyio


async def _full_reload(running):
    recommender = running.recommender
    snap = recommender.snapshot
    return await recommender.snapshots.load_posteriors(snap.catalog, snap.clusters)


def _assert_same(incremental, full) -> None:
    assert incremental.version == full.version
    np.testing.assert_array_equal(incremental.stored, full.stored)
    np.testing.assert_array_equal(incremental.global_counts, full.global_counts)
    np.testing.assert_array_equal(incremental.alpha, full.alpha)
    np.testing.assert_array_equal(incremental.beta, full.beta)


async def test_deltas_reproduce_a_full_reload_across_clusters(start):
    running = await start(snapshot_ms=600_000, stale_after_s=700)
    items = [f"i{n}" for n in range(30)]
    await add_items(running.client, items, [[1.0, n / 30] for n in range(30)])
    users = [f"u{n}" for n in range(12)]
    # Some history, then a 2-cluster fit, so deltas land in different rows.
    await send(running.client, [event("click", u, items[n % 30]) for n, u in enumerate(users)])
    fit = await running.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 0})
    assert fit.status_code == 200, fit.text
    rng = random.Random(5)
    reloads = running.recommender.metrics.snapshot_full_reloads
    before = reloads._value.get()
    for _ in range(8):
        batch = [
            event(rng.choice(["impression", "impression", "click"]), rng.choice(users),
                  rng.choice(items))
            for _ in range(rng.randint(1, 60))
        ]  # fmt: skip
        await send(running.client, batch)
        await send(running.client, batch[: len(batch) // 2])  # replays add nothing
        await running.refresh()
        _assert_same(running.recommender.snapshot.posteriors, await _full_reload(running))
    assert reloads._value.get() == before  # every refresh above went by deltas


async def test_a_gap_in_the_change_stream_falls_back_to_a_full_reload(start, redis_url):
    running = await start(snapshot_ms=600_000, stale_after_s=700)
    await add_items(running.client, ["a", "b"])
    await send(running.client, [event("impression", "u", "a")])
    await running.refresh()
    client = raw_client(redis_url)
    await send(running.client, [event("click", "u", "a")])
    keys = running.app.state.engine.store.keys
    # as if trimmed before this worker read it
    await client.delete(*(keys.changes(shard) for shard in range(keys.shards)))
    await client.aclose()
    await send(running.client, [event("impression", "u", "b")])
    reloads = running.recommender.metrics.snapshot_full_reloads
    before = reloads._value.get()
    await running.refresh()
    assert reloads._value.get() == before + 1
    _assert_same(running.recommender.snapshot.posteriors, await _full_reload(running))
    posteriors = running.recommender.snapshot.posteriors
    assert posteriors.global_counts[1].tolist() == [1.0, 0.0]  # clicks
    assert posteriors.global_counts[0].tolist() == [1.0, 1.0]  # impressions
