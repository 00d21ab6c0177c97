"""The learned seen decay in the service: evidence counted once, the curve served and shown."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import redis.asyncio as redis

from bandits.fatigue import decay_prior
from service.engine.fatigue import BUCKETS, SeenDecay
from service.store.codecs import LIFT_FIELDS, ServedList
from service.store.keys import Keys
from tests.service.fatigue_world import (
    FAST_RECOVERY,
    HOUR,
    ITEMS,
    Clock,
    FatigueWorld,
    Truth,
    by_bucket,
    fixed_decay,
)
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio

# Bucket of an item seen twice without a click, the last time under an hour ago.
TWICE_JUST_NOW = int(BUCKETS.index([2], [0.0])[0])
# Each run of a world gets a key prefix of its own, so it starts from no counts.
_runs = itertools.count()


@pytest.fixture
async def raw(redis_url: str):
    """A plain Redis client, to read what the service stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _fatigue(raw: redis.Redis) -> dict[str, float]:
    """Return the evidence as stored, summed over the count shards (without the measured
    lift's counters, which share the hash: tests/service/test_measured_lift.py)."""
    keys = Keys("br")
    total: dict[str, float] = {}
    for shard in range(keys.shards):
        for k, v in (await raw.hgetall(keys.fatigue(shard))).items():
            if k.decode() not in LIFT_FIELDS:
                total[k.decode()] = total.get(k.decode(), 0.0) + float(v)
    return total


async def _served(
    svc, raw: redis.Redis, user: str, candidates: list[str]
) -> tuple[str, ServedList]:
    body = {"user_id": user, "k": len(candidates), "candidates": candidates}
    response = await svc.client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    rec_id = response.json()["rec_id"]
    return rec_id, ServedList.decode(await raw.get(f"br:rec:{{{rec_id}}}"))


async def test_a_served_list_logs_each_items_bucket_and_arm_mean(svc, raw):
    await add_items(svc.client, ["a", "b"])
    crowd = [event("impression", "crowd", "a") for _ in range(30)]
    await send(svc.client, [*crowd, event("click", "c1", "a")])
    # u1 ignored "a" twice (feedback without a rec_id counts for the arms and the user,
    # not as evidence: there is no logged bucket for it).
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    await svc.refresh()
    _, served = await _served(svc, raw, "u1", ["a", "b"])
    assert served.fatigue is not None and served.means is not None
    buckets = dict(zip(served.items, served.fatigue, strict=True))
    assert buckets == {"a": TWICE_JUST_NOW, "b": 0}
    means = dict(zip(served.items, served.means, strict=True))
    arms = {i: (await svc.client.get(f"/v1/arms/{i}")).json()["global"] for i in "ab"}
    for item in "ab":
        arm = arms[item]
        assert means[item] == pytest.approx(arm["alpha"] / (arm["alpha"] + arm["beta"]), rel=1e-5)
    assert await _fatigue(raw) == {}


@pytest.mark.parametrize("half_life_h", [1.0, 24.0, 24.0 * 365])
async def test_items_are_bucketed_by_the_plain_count_since_the_last_click(start, raw, half_life_h):
    """As the simulator buckets (bandits.fatigue): unclicked impressions since the last
    click, not fading, and the age of the last; whatever the seen half-life, which only
    fades the fixed decay's count (and shapes the prior). Bucketed by the faded count
    rounded up, "again" was n = 1 and "recent" n = 2 at short half-lives."""
    svc = await start(seen_half_life_h=half_life_h)
    clock = Clock()
    svc.recommender.clock = clock
    items = ["old", "again", "recent", "clicked", "fresh"]
    await add_items(svc.client, items)
    ignored = ["old", "again", "clicked", "clicked"]
    await send(svc.client, [event("impression", "u1", item) for item in ignored])
    clock.t += 3 * 7 * 24 * HOUR
    # Three weeks later: "again" once more, "recent" three times two hours apart, then a
    # click on "clicked" and one more impression of it.
    await send(svc.client, [event("impression", "u1", i) for i in ("again", "recent")])
    for _ in range(2):
        clock.t += 2 * HOUR
        await send(svc.client, [event("impression", "u1", "recent")])
    await send(svc.client, [event("impression", "u1", "clicked"), event("click", "u1", "clicked")])
    clock.t += 60.0
    await send(svc.client, [event("impression", "u1", "clicked")])
    clock.t += HOUR / 3 - 60.0
    await svc.refresh()
    _, served = await _served(svc, raw, "u1", items)
    assert served.fatigue is not None
    buckets = dict(zip(served.items, served.fatigue, strict=True))
    assert buckets == {
        "old": int(BUCKETS.index([1], [1e9])[0]),  # n = 1, the oldest band (> 256 h)
        "again": int(BUCKETS.index([2], [4 * HOUR + HOUR / 3])[0]),  # n = 2, 4-16 h
        "recent": int(BUCKETS.index([3], [HOUR / 3])[0]),  # n = 3, < 1 h
        "clicked": int(BUCKETS.index([1], [HOUR / 3])[0]),  # reset by the click: n = 1
        "fresh": 0,
    }
    assert buckets["old"] == BUCKETS.n_ages  # the last band of the n = 1 row
    # The fixed decay still reads the fading count, brought to now.
    seen = {s["item_id"]: s for s in (await svc.client.get("/v1/users/u1")).json()["seen"]}
    ages_h = np.array([4.0, 2.0, 0.0]) + 1 / 3
    faded = np.exp2(-ages_h / half_life_h).sum()
    assert seen["recent"]["unclicked"] == pytest.approx(faded, rel=1e-4)
    assert seen["old"]["unclicked"] == pytest.approx(2.0 ** (-(21 * 24 + 13 / 3) / half_life_h))
    assert {i: s["ignored"] for i, s in seen.items()} == {
        "old": 1, "again": 2, "recent": 3, "clicked": 1,
    }  # fmt: skip


async def test_evidence_is_counted_once_under_replays(svc, raw):
    await add_items(svc.client, ["a", "b", "c"])
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    await svc.refresh()
    rec_id, served = await _served(svc, raw, "u1", ["a", "b"])
    assert served.means is not None
    means = dict(zip(served.items, served.means, strict=True))
    impression_a = event("impression", "u1", "a", rec_id)
    batch = [
        impression_a,
        impression_a,  # the same event twice in one batch
        event("impression", "u1", "b", rec_id),
        event("click", "u1", "b", rec_id),
    ]
    first = await send(svc.client, batch)
    assert first.json()["accepted"] == 3
    expected = {
        f"imp:{TWICE_JUST_NOW}": 1.0,
        f"exp:{TWICE_JUST_NOW}": means["a"],
        "imp:0": 1.0,
        "exp:0": means["b"],
        "clk:0": 1.0,
    }
    assert await _fatigue(raw) == pytest.approx(expected)
    # Resent (a client that lost the answer), twice, and once more with a new event.
    for _ in range(2):
        again = await send(svc.client, batch)
        assert again.json() == {"accepted": 0, "duplicates": 4, "unknown_rec_ids": []}
    late_click = event("click", "u1", "a", rec_id)
    assert (await send(svc.client, [*batch, late_click])).json()["accepted"] == 1
    expected[f"clk:{TWICE_JUST_NOW}"] = 1.0
    assert await _fatigue(raw) == pytest.approx(expected)
    # A refused batch (an item the list did not have) writes no evidence either.
    refused = await send(svc.client, [event("impression", "u1", "c", rec_id)])
    assert refused.status_code == 422
    assert await _fatigue(raw) == pytest.approx(expected)
    # Conversions are not evidence of click chance.
    await send(svc.client, [event("conversion", "u1", "b", rec_id)])
    assert await _fatigue(raw) == pytest.approx(expected)


async def test_lists_logged_without_buckets_still_count_for_the_arms(svc, raw):
    """Served lists written by earlier releases have no buckets: their feedback adds none."""
    await add_items(svc.client, ["a"])
    await svc.refresh()
    rec_id, served = await _served(svc, raw, "u1", ["a"])
    old = dataclasses.replace(served, fatigue=None, means=None, global_means=None)
    assert not {"fatigue", "means", "global_means"} & set(json.loads(old.encode()))
    await raw.set(f"br:rec:{{{rec_id}}}", old.encode())
    events = [event("impression", "u1", "a", rec_id), event("click", "u1", "a", rec_id)]
    assert (await send(svc.client, events)).json()["accepted"] == 2
    assert (await svc.client.get("/v1/arms/a")).json()["global"]["clicks"] == 1
    assert await _fatigue(raw) == {}


async def test_stats_show_the_grid_with_its_evidence_and_prior(svc, raw):
    await add_items(svc.client, ["a", "b"])
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    await svc.refresh()
    rec_id, _ = await _served(svc, raw, "u1", ["a", "b"])
    events = [event("impression", "u1", i, rec_id) for i in "ab"]
    await send(svc.client, [*events, event("click", "u1", "b", rec_id)])
    await svc.refresh()
    decay = (await svc.client.get("/v1/stats")).json()["seen_decay"]
    assert decay["mode"] == "learned"
    assert decay["prior_strength"] == 100
    assert decay["unclicked"] == [1, 2, 3, 4]
    assert decay["age_bands_h"] == [[0, 1], [1, 4], [4, 16], [16, 64], [64, 256], [256, None]]
    assert decay["fresh"]["impressions"] == 1 and decay["fresh"]["clicks"] == 1
    cells = decay["cells"]
    assert [len(row) for row in cells] == [6, 6, 6, 6]
    assert cells[1][0]["impressions"] == 1 and cells[1][0]["clicks"] == 0
    prior = BUCKETS.grid(decay_prior(BUCKETS, 0.7, 24 * 3600.0))
    for n, row in enumerate(cells):
        for a, cell in enumerate(row):
            assert cell["prior"] == pytest.approx(prior[n, a], abs=1e-4)
            low, high = cell["ci90"]
            assert low < cell["multiplier"] < high
            if cell["impressions"] == 0:
                # No evidence: the prior's mean, to within how the fresh rate moved.
                assert cell["multiplier"] == pytest.approx(prior[n, a], rel=0.05)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("off", 1.0),
        ("fixed", 0.5**2),
        # No evidence yet: the prior at the band's typical age (half an hour).
        ("learned-mean", 0.5 ** (2 * 2 ** (-0.5 / 24))),
        ("learned", 0.5 ** (2 * 2 ** (-0.5 / 24))),
    ],
)
async def test_each_mode_weighs_a_seen_item_as_it_serves_it(start, mode, expected):
    svc = await start(seen_decay=mode, seen_gamma=0.5)
    await add_items(svc.client, ["a"])
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    await svc.refresh()
    (seen,) = (await svc.client.get("/v1/users/u1")).json()["seen"]
    assert seen["multiplier"] == pytest.approx(expected, rel=1e-3)
    stats = (await svc.client.get("/v1/stats")).json()
    assert stats["seen_decay"]["mode"] == mode


# -- statistical: a population with a known fatigue curve, through the engine --------------


async def _run_world(start, world: FatigueWorld, rounds: int, seed: int, **settings) -> SeenDecay:
    """Drive a fresh service (its own key prefix) with the world; return its learned decay."""
    prefix = f"fw{next(_runs)}"
    svc = await start(
        seed=seed, key_prefix=prefix, snapshot_ms=600_000, stale_after_s=700,
        propensity_samples=0, **settings,
    )  # fmt: skip
    clock = Clock()
    svc.recommender.clock = clock
    await add_items(svc.client, list(ITEMS))
    await svc.refresh()
    await world.run(svc.recommender, clock, rounds)
    decay = svc.recommender.snapshots.current.seen_decay
    assert decay is not None
    return decay


@pytest.mark.slow
async def test_the_learned_curve_recovers_a_known_fatigue_curve(start):
    """160 users (half visit every ~4 h, half every ~50 h) for 600 simulated hours, 8 items.

    The world's click chance after n ignored impressions is x0.45/0.3/0.2/0.15 of the
    item's CTR under an hour after the last, recovering to x0.9 after a day; the prior
    (seen_gamma 0.7, counts that do not fade: seen_half_life_h one year) knows none of the
    recovery. Served with the default mode (a Thompson draw of the curve per list). Buckets
    with >= 1000 impressions: 6-7 per seed (the < 1 h band gets no visits, bands past 64 h
    too few). Observed on seeds 0-2 (2026-12-02, bucketed by the plain count since the last
    click): mean error 0.046, 0.027, 0.017, max 0.107, 0.067, 0.041 (bucketed by the faded
    count before: 0.019, 0.032, 0.032, max 0.057, 0.060, 0.100), where the prior is off by
    0.33 on average (max 0.67). Runs are not bit-for-bit
    repeatable (the snapshot task's timing), hence margins. Asserted per seed: at least 5
    such buckets, mean error <= 0.07, max <= 0.16, and the prior off by >= 0.2 on average
    (so that a curve that learned nothing fails).
    """
    for seed in range(3):
        world = FatigueWorld(
            by_bucket(FAST_RECOVERY), np.random.default_rng(seed), half_life_h=24 * 365,
            users=160, visit_chance=(0.25, 0.02), round_h=1.0,
        )  # fmt: skip
        decay = await _run_world(start, world, 600, seed, seen_half_life_h=24 * 365)
        evidenced = decay.evidence[0] >= 1000
        evidenced[0] = False  # the fresh bucket is 1 by definition
        errors = np.abs(decay.curve - FAST_RECOVERY)[evidenced]
        prior_errors = np.abs(decay.prior - FAST_RECOVERY)[evidenced]
        shown = (seed, evidenced.sum(), errors.round(3), prior_errors.round(3))
        assert evidenced.sum() >= 5, shown
        assert errors.mean() <= 0.07 and errors.max() <= 0.16, shown
        assert prior_errors.mean() >= 0.2, shown


async def _learned_over_fixed(start, truth: Truth) -> list[float]:
    """Return, per seed 0-2, the true click chance served late in the run, learned / fixed."""
    ratios = []
    for seed in range(3):
        late = {}
        for mode in ("learned", "fixed"):
            world = FatigueWorld(truth, np.random.default_rng(seed), half_life_h=24.0)
            await _run_world(start, world, 400, seed, seen_decay=mode)
            chances = np.array(world.chances)
            late[mode] = chances[len(chances) // 2 :].mean()
        ratios.append(late["learned"] / late["fixed"])
    return ratios


@pytest.mark.slow
async def test_learned_beats_fixed_where_users_recover_fast(start):
    """The default mode against "fixed" on the same world and seeds, 400 half-hour rounds.

    Metric: the true click chance of what was served over the last half of the run. The
    world: the curve of the test above (users recover within a day), where the fixed decay
    assumes x0.7 per ignored impression and a 24 h half-life. Observed learned / fixed on
    seeds 0-2: 1.091, 1.101, 1.084 (mean 1.092; bucketed by the faded count before, in a
    world that did too: 1.108, 1.071, 1.106). Asserted: mean >= 1.04.
    """
    ratios = await _learned_over_fixed(start, by_bucket(FAST_RECOVERY))
    assert np.mean(ratios) >= 1.04, ratios


@pytest.mark.slow
async def test_learned_ties_fixed_where_users_tire_as_it_assumes(start):
    """As above, in exactly the fixed decay's world: x0.7 per ignored impression, counts
    halving per 24 h.

    Observed learned / fixed on seeds 0-2, three runs (2026-12-02): 0.953, 0.966, 0.925;
    0.937, 0.951, 0.943; 0.950, 0.951, 0.942 (means 0.948, 0.944, 0.947). The fixed decay
    uses each count's exact faded value; the learned one buckets by the plain count since
    the last click, as the simulator does, which this world (it tires by the faded count)
    does not follow: bucketed by the faded count rounded up it scored 0.981, 0.966, 0.949
    (mean 0.965). Serving without any decay scores 0.78-0.80 of fixed here, so this is most
    of the way. Asserted: mean >= 0.93, a tie within 7%.
    """
    ratios = await _learned_over_fixed(start, fixed_decay(0.7, 24.0))
    assert np.mean(ratios) >= 0.93, ratios
