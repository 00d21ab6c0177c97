"""Discounted counts (BANDITREC_HALF_LIFE_H): evidence fades, snapshots stay exact, TS follows."""

from __future__ import annotations

import itertools
import random
import time

import numpy as np
import pytest
import redis.asyncio as redis

from service.schemas import FeedbackBatch, FeedbackEvent, RecommendRequest
from tests.service.helpers import add_items, arm, event, send, stored_counts

pytestmark = pytest.mark.anyio

HOUR = 3600.0


class Clock:
    """A wall clock that tests move forward by hand."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


async def _started(start, **overrides):
    running = await start(snapshot_ms=600_000, stale_after_s=700, **overrides)
    clock = Clock()
    running.recommender.clock = clock
    return running, clock


async def test_a_count_halves_once_per_half_life(start, redis_url):
    running, clock = await _started(start, half_life_h=1.0)
    await add_items(running.client, ["a"])
    await send(running.client, [event("impression", "u", "a"), event("click", "u", "a")])
    clock.t += HOUR
    await send(running.client, [event("impression", "u", "a")])
    store = running.app.state.engine.store
    # The two impressions are parts in their events' shards, summed where read.
    values, times, _ = await store.arm_counts("a", 0, 1, half_life_s=HOUR)
    stored, at = values[-1][0], times[-1][0]
    clicks = values[-1][1]
    assert stored == 1.5  # the impression an hour old weighs half, plus this one
    assert at == clock.t
    assert float(clicks) == 1.0  # untouched since: stored as it was
    clock.t += 2 * HOUR
    global_arm = (await arm(running.client, "a"))["global"]
    # Read three hours after the click and two after the last impression.
    assert global_arm["impressions"] == pytest.approx(1.5 / 4)
    assert global_arm["clicks"] == pytest.approx(1.0 / 8)


async def test_without_a_half_life_counts_never_fade(start, redis_url):
    running, clock = await _started(start)
    await add_items(running.client, ["a"])
    await send(running.client, [event("impression", "u", "a")])
    clock.t += 1000 * HOUR
    await send(running.client, [event("impression", "u", "a")])
    client = redis.Redis.from_url(redis_url)
    keys = running.app.state.engine.store.keys
    assert await stored_counts(client, keys, "imp") == {"a": 2.0}
    for shard in range(keys.shards):
        assert not await client.exists(keys.arm_times("imp", shard=shard))
        assert not await client.exists(keys.decay_since(shard))
    await client.aclose()
    assert (await arm(running.client, "a"))["global"]["impressions"] == 2


async def test_turning_discounting_on_and_off_keeps_counts_consistent(start):
    # One count shard: with several, turning discounting off keeps each shard's part as
    # its last write left it, so the totals below would depend on which shard each
    # event fell in (docs/scaling.md).
    before, _ = await _started(start, count_shards=1)
    await add_items(before.client, ["a", "b"])
    await send(before.client, [event("impression", "u", i) for i in ["a", "a", "b", "b"]])
    # Same data, now with a half-life: counts with no time of their own fade from the
    # first discounted batch on.
    during, clock = await _started(start, half_life_h=1.0, count_shards=1)
    await send(during.client, [event("impression", "u", "a")])
    clock.t += HOUR
    assert (await arm(during.client, "a"))["global"]["impressions"] == pytest.approx(1.5)
    assert (await arm(during.client, "b"))["global"]["impressions"] == pytest.approx(1.0)
    await send(during.client, [event("impression", "u", "a")])  # 3 * 0.5 + 1
    # Back off: fractional totals keep counting; nothing fades any more.
    after, later = await _started(start, count_shards=1)
    later.t = clock.t + 10 * HOUR
    await send(after.client, [event("impression", "u", "a")])
    assert (await arm(after.client, "a"))["global"]["impressions"] == pytest.approx(3.5)
    assert (await arm(after.client, "b"))["global"]["impressions"] == 2


async def test_applied_changes_equal_a_full_reload_when_discounting(start):
    running, clock = await _started(start, half_life_h=2.0)
    items = [f"i{n}" for n in range(20)]
    await add_items(running.client, items, [[1.0, n / 20] for n in range(20)])
    users = [f"u{n}" for n in range(10)]
    await send(running.client, [event("click", u, items[2 * n]) for n, u in enumerate(users)])
    fit = await running.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 0})
    assert fit.status_code == 200, fit.text
    recommender = running.recommender
    reloads = recommender.metrics.snapshot_full_reloads
    before = reloads._value.get()
    rng = random.Random(7)
    for _ in range(6):
        clock.t += rng.uniform(0, 3 * HOUR)
        batch = [
            event(rng.choice(["impression", "impression", "click", "conversion"]),
                  rng.choice(users), rng.choice(items))
            for _ in range(rng.randint(1, 40))
        ]  # fmt: skip
        await send(running.client, batch)
        await running.refresh()
        incremental = recommender.snapshot.posteriors
        snap = recommender.snapshot
        full = await recommender.snapshots.load_posteriors(snap.catalog, snap.clusters)
        assert incremental.version == full.version
        # Discounted parts of several shards are summed in another order here than in a
        # full read: equal to rounding, not to the bit.
        np.testing.assert_allclose(incremental.stored, full.stored, rtol=1e-12)
        np.testing.assert_array_equal(incremental.updated, full.updated)  # NaNs alike
        prior, discount = recommender.settings.prior_model, recommender.settings.discount
        a = incremental.rederive(prior, discount, clock.t + HOUR)
        b = full.rederive(prior, discount, clock.t + HOUR)
        np.testing.assert_allclose(a.alpha, b.alpha, rtol=1e-12)
        np.testing.assert_allclose(a.beta, b.beta, rtol=1e-12)
    assert reloads._value.get() == before  # every refresh above went by changes
    assert np.isfinite(incremental.updated).any()


async def test_posteriors_fade_with_time_alone(start):
    running, clock = await _started(start, half_life_h=1.0)
    await add_items(running.client, ["a", "b"])
    await send(running.client, [event("impression", "u", "a") for _ in range(8)])
    await running.refresh()
    assert running.recommender.snapshot.posteriors.global_counts[0, 0] == pytest.approx(8.0)
    clock.t += 3 * HOUR  # no feedback at all meanwhile
    await running.refresh()
    assert running.recommender.snapshot.posteriors.global_counts[0, 0] == pytest.approx(1.0)


# -- the best item changes mid-run -----------------------------------------------------

PHASE_ROUNDS = 25
LISTS_PER_ROUND = 20
# Item "b" becomes the best when the phase flips; rounds are an hour apart.
CTR_BEFORE = {"a": 0.30, "b": 0.05, "c": 0.10, "d": 0.10}
CTR_AFTER = {"a": 0.05, "b": 0.30, "c": 0.10, "d": 0.10}
_ids = itertools.count()


async def _share_of_new_best(start, half_life_h: float, seed: int) -> float:
    """Return the share of lists that served "b" in the rounds after the flip."""
    running, clock = await _started(
        start,
        seed=seed,
        key_prefix=f"drift_{seed}_{int(half_life_h)}",  # each run starts from no counts
        half_life_h=half_life_h,
        propensity_samples=0,
        seen_gamma=1.0,
    )
    await add_items(running.client, list(CTR_BEFORE))
    recommender = running.recommender
    world = random.Random(seed)
    served_b = 0
    for round_ in range(2 * PHASE_ROUNDS):
        ctr = CTR_BEFORE if round_ < PHASE_ROUNDS else CTR_AFTER
        events = []
        for n in range(LISTS_PER_ROUND):
            user = f"u{n}"
            response = await recommender.recommender.recommend(RecommendRequest(user_id=user, k=1))
            item = response.items[0].item_id
            served_b += round_ >= PHASE_ROUNDS and item == "b"
            kinds = ["impression"] + (["click"] if world.random() < ctr[item] else [])
            events += [
                FeedbackEvent(event_id=f"d{next(_ids)}", type=kind, user_id=user, item_id=item)
                for kind in kinds
            ]
        await recommender.feedback.record(FeedbackBatch(events=events))
        clock.t += HOUR
        await recommender.refresh()
    return served_b / (PHASE_ROUNDS * LISTS_PER_ROUND)


@pytest.mark.slow
async def test_discounted_ts_recovers_faster_when_the_best_item_changes(start):
    """25 hourly rounds of 20 lists with "a" best (CTR 0.30), then 25 with "b" best.

    With a 3 h half-life the old evidence for "a" fades within hours, so TS moves to "b";
    undiscounted, a's ~150 clicks keep its mean high for most of the second phase.
    Over seeds 0..2 the discounted policy served "b" in 0.56, 0.64 and 0.65 of post-flip
    lists, the undiscounted one in 0.00-0.05. Asserted: discounted mean >= 0.45 and at
    least 0.3 above undiscounted; discounting that did nothing would score about the same
    under both and fail the difference.
    """
    discounted = [await _share_of_new_best(start, 3.0, seed) for seed in range(3)]
    kept = [await _share_of_new_best(start, 0.0, seed) for seed in range(3)]
    assert np.mean(discounted) >= 0.45, discounted
    assert np.mean(discounted) - np.mean(kept) >= 0.3, (discounted, kept)
