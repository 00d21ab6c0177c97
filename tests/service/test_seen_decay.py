"""The learned seen decay in the service: evidence counted once, the curve served and shown."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json

import numpy as np
import pytest
import redis.asyncio as redis

from bandits.fatigue import decay_prior
from service.backup import export_document, import_document
from service.engine.affinity import tilt_for
from service.engine.fatigue import BUCKETS, SeenArrays, SeenDecay, seen_penalty
from service.engine.membership import Membership
from service.state import parse_document
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
from tests.service.test_affinity import _fans_read_their_side, _fitted

pytestmark = pytest.mark.anyio

# Bucket of an item seen twice without a click, the last time under an hour ago.
TWICE_JUST_NOW = int(BUCKETS.index([2], [0.0])[0])
# The fixed decay of such an item at the default seen_gamma (its count has not faded yet).
TWICE = 0.7**2
# Each run of a world gets a key prefix of its own, so it starts from no counts.
_runs = itertools.count()


@pytest.fixture
async def raw(redis_url: str):
    """A plain Redis client, to read what the service stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _fatigue(raw: redis.Redis, prefix: str = "br") -> dict[str, float]:
    """Return the evidence as stored, summed over the count shards (without the measured
    lift's counters, which share the hash: tests/service/test_measured_lift.py)."""
    keys = Keys(prefix)
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
    # Expected clicks had the fixed decay been right: the mean x the fixed decay (no
    # clusters, so no personal tilt).
    assert served.expected is not None
    expected = dict(zip(served.items, served.expected, strict=True))
    assert expected == pytest.approx({"a": means["a"] * TWICE, "b": means["b"]}, rel=1e-4)
    assert await _fatigue(raw) == {}


async def test_expected_clicks_count_the_personal_tilt(start, raw):
    """As the simulator counts them: the tilt the list was ranked with is part of what the
    arm expected of the item for this user, with the arm's mean and the fixed decay."""
    running, _, _ = await _fitted(start, personal_tilt=1.0)
    await _fans_read_their_side(running)
    # One click on the other side: y items come closer to this user than to their centre.
    await send(running.client, [event("click", "xfan1", "y0")])
    snap = running.recommender.snapshot
    rec_id, served = await _served(running, raw, "xfan1", ["x9", "y9", "x1"])
    assert served.means is not None and served.expected is not None
    user = (await running.recommender.users.read_current(["xfan1"]))["xfan1"]
    positions = np.array([snap.catalog.index[i] for i in served.items])
    membership = Membership.decode(served.membership)
    tilt = tilt_for(snap.catalog, snap.affinity, membership, user.clicks, positions, 1.0)
    assert tilt is not None and np.abs(np.log(tilt)).max() > 0.05, tilt
    # x9 and y9 were seen once without a click (fixed decay 0.7), x1 clicked since (1).
    bases = {"x9": 0.7, "y9": 0.7, "x1": 1.0}
    assert served.expected == pytest.approx(
        np.array(served.means) * tilt * [bases[i] for i in served.items], rel=1e-4
    )
    events = [event("impression", "xfan1", i, rec_id) for i in served.items]
    await send(running.client, events)
    once = int(BUCKETS.index([1], [0.0])[0])
    logged = dict(zip(served.items, served.expected, strict=True))
    assert await _fatigue(raw) == pytest.approx({
        "cimp:0": 1.0, "cexp:0": logged["x1"],
        f"cimp:{once}": 2.0, f"cexp:{once}": logged["x9"] + logged["y9"],
    })  # fmt: skip


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
    assert served.means is not None and served.expected is not None
    means = dict(zip(served.items, served.means, strict=True))
    # What each impression expects: the arm's mean x the fixed decay (0.7 ** 2 for "a").
    assert served.expected == pytest.approx([means[i] * (TWICE if i == "a" else 1.0)
                                             for i in served.items], rel=1e-4)  # fmt: skip
    logged = dict(zip(served.items, served.expected, strict=True))
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
        f"cimp:{TWICE_JUST_NOW}": 1.0,
        f"cexp:{TWICE_JUST_NOW}": logged["a"],
        "cimp:0": 1.0,
        "cexp:0": logged["b"],
        "cclk:0": 1.0,
    }
    assert await _fatigue(raw) == pytest.approx(expected)
    # Resent (a client that lost the answer), twice, and once more with a new event.
    for _ in range(2):
        again = await send(svc.client, batch)
        assert again.json() == {"accepted": 0, "duplicates": 4, "unknown_rec_ids": []}
    late_click = event("click", "u1", "a", rec_id)
    assert (await send(svc.client, [*batch, late_click])).json()["accepted"] == 1
    expected[f"cclk:{TWICE_JUST_NOW}"] = 1.0
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
    old = dataclasses.replace(served, fatigue=None, means=None, global_means=None, expected=None)
    assert not {"fatigue", "means", "global_means", "expected"} & set(json.loads(old.encode()))
    await raw.set(f"br:rec:{{{rec_id}}}", old.encode())
    events = [event("impression", "u1", "a", rec_id), event("click", "u1", "a", rec_id)]
    assert (await send(svc.client, events)).json()["accepted"] == 2
    assert (await svc.client.get("/v1/arms/a")).json()["global"]["clicks"] == 1
    assert await _fatigue(raw) == {}


async def test_lists_and_evidence_of_the_release_before_do_not_feed_the_correction(svc, raw):
    """The release before logged buckets and arm means but no expectation under the fixed
    decay, and counted 'imp:B', 'clk:B', 'exp:B' with expected = the arm's mean: a
    different meaning. Neither reaches the correction; both lists still count for the arms."""
    await add_items(svc.client, ["a", "b"])
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    await svc.refresh()
    rec_id, served = await _served(svc, raw, "u1", ["a", "b"])
    before = dataclasses.replace(served, expected=None)
    assert "expected" not in json.loads(before.encode()) and before.fatigue is not None
    await raw.set(f"br:rec:{{{rec_id}}}", before.encode())
    events = [event("impression", "u1", i, rec_id) for i in "ab"]
    assert (await send(svc.client, [*events, event("click", "u1", "b", rec_id)])).status_code == 200
    assert (await svc.client.get("/v1/arms/b")).json()["global"]["clicks"] == 1
    assert await _fatigue(raw) == {}
    # Plenty of the old kind of evidence, saying the tired bucket clicks as much as fresh.
    shard = Keys("br").fatigue(0)
    old = {f"imp:{TWICE_JUST_NOW}": 5000, f"clk:{TWICE_JUST_NOW}": 500,
           f"exp:{TWICE_JUST_NOW}": 500, "imp:0": 5000, "clk:0": 500, "exp:0": 500}  # fmt: skip
    await raw.hset(shard, mapping=old)
    await send(svc.client, [event("impression", "crowd", "a")])  # moves the counts: relearn
    await svc.refresh()
    decay = svc.recommender.snapshots.current.seen_decay
    assert decay is not None and not decay.evidence.any()
    assert decay.curve == pytest.approx(np.ones(BUCKETS.size))
    seen = {s["item_id"]: s for s in (await svc.client.get("/v1/users/u1")).json()["seen"]}["a"]
    assert seen["multiplier"] == pytest.approx(0.7**3, rel=1e-3)  # the fixed decay alone


async def test_serving_multiplies_the_fixed_decay_by_the_learned_correction(start, raw):
    """Evidence that a twice-ignored item clicks 1.6x as often as the fixed decay expects
    lifts its multiplier to 0.49 x ~1.6, in the posterior mean and in every draw's bucket."""
    svc = await start(seen_decay_prior_strength=100.0)
    await add_items(svc.client, ["a"])
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    # 4000 fresh impressions that clicked as expected; 2000 tired ones 1.6x as often.
    evidence = {"cimp:0": 4000, "cclk:0": 400, "cexp:0": 400, f"cimp:{TWICE_JUST_NOW}": 2000,
                f"cclk:{TWICE_JUST_NOW}": 160, f"cexp:{TWICE_JUST_NOW}": 100}  # fmt: skip
    await raw.hset(Keys("br").fatigue(0), mapping=evidence)
    await send(svc.client, [event("impression", "crowd", "a")])
    await svc.refresh()
    decay = svc.recommender.snapshots.current.seen_decay
    assert decay is not None
    correction = float(decay.curve[TWICE_JUST_NOW])
    assert 1.5 < correction < 1.62, correction
    (seen,) = (await svc.client.get("/v1/users/u1")).json()["seen"]
    assert seen["multiplier"] == pytest.approx(TWICE * correction, rel=1e-3)
    # A Thompson draw per list ("learned"): the fixed decay times one draw's bucket.
    settings = svc.recommender.ctx.settings.model_copy(update={"seen_decay": "learned"})
    drawn = SeenDecay.learn(settings, decay.evidence)
    seen_now = SeenArrays(np.array([2.0]), np.array([svc.recommender.clock()]), np.array([2.0]))
    rng = np.random.default_rng(0)
    for _ in range(20):
        penalty = seen_penalty(drawn, settings, np.array([0]), seen_now, seen_now.updated[0], rng)
        assert penalty.bases == pytest.approx([TWICE])
        assert (penalty.multipliers / TWICE)[0] in drawn.curves[:, TWICE_JUST_NOW]
    stats = (await svc.client.get("/v1/stats")).json()["seen_decay"]
    cell = stats["cells"][1][0]  # n = 2, < 1 h
    assert cell["correction"] == pytest.approx(correction, abs=1e-4)
    assert cell["multiplier"] == pytest.approx(cell["prior"] * correction, abs=2e-4)


async def test_the_new_evidence_travels_through_export_and_import(start, raw, make_settings):
    """An export carries the new kinds (and the old ones, unread); a file written by the
    release before (old kinds only) still imports, and adds no evidence."""
    await start()
    mapping = {"cimp:7": 3, "cclk:7": 1, "cexp:7": 0.4567, "imp:7": 9, "exp:7": 0.5}
    await raw.hset(Keys("br").fatigue(0), mapping=mapping)
    out = io.StringIO()
    settings = make_settings(key_prefix="br")
    await export_document(settings.redis_url, settings, out, users=False)
    document = json.loads(out.getvalue())
    assert {k: v for k, v in document["seen_decay"].items() if k not in LIFT_FIELDS} == {
        "cclk:7": 1, "cexp:7": 0.4567, "cimp:7": 3, "exp:7": 0.5, "imp:7": 9,
    }  # fmt: skip
    copy = make_settings(key_prefix="copy")
    document_now = parse_document(out.getvalue())
    assert await import_document(copy.redis_url, copy, document_now, replace=False) == 0
    assert await _fatigue(raw, "copy") == await _fatigue(raw, "br")
    older = {**document, "seen_decay": {"imp:7": 9, "clk:7": 1, "exp:7": 0.5}}
    old_copy = make_settings(key_prefix="oldcopy")
    document_before = parse_document(json.dumps(older))
    assert await import_document(old_copy.redis_url, old_copy, document_before, replace=False) == 0
    assert await _fatigue(raw, "oldcopy") == {"imp:7": 9, "clk:7": 1, "exp:7": 0.5}
    restored = (await start(key_prefix="oldcopy")).recommender.snapshots.current.seen_decay
    assert restored is not None and not restored.evidence.any()


async def test_stats_show_the_grid_with_its_evidence_and_prior(svc, raw):
    await add_items(svc.client, ["a", "b"])
    await send(svc.client, [event("impression", "u1", "a"), event("impression", "u1", "a")])
    await svc.refresh()
    rec_id, _ = await _served(svc, raw, "u1", ["a", "b"])
    events = [event("impression", "u1", i, rec_id) for i in "ab"]
    await send(svc.client, [*events, event("click", "u1", "b", rec_id)])
    await svc.refresh()
    decay = (await svc.client.get("/v1/stats")).json()["seen_decay"]
    assert decay["mode"] == "learned-mean"
    # Fitted by default: one ignored impression shows no spread beyond chance, so the cap.
    assert decay["prior_strength"] == 10_000 and decay["prior_strength_fitted"] is True
    assert decay["unclicked"] == [1, 2, 3, 4]
    assert decay["age_bands_h"] == [[0, 1], [1, 4], [4, 16], [16, 64], [64, 256], [256, None]]
    assert decay["fresh"]["impressions"] == 1 and decay["fresh"]["clicks"] == 1
    cells = decay["cells"]
    assert [len(row) for row in cells] == [6, 6, 6, 6]
    assert cells[1][0]["impressions"] == 1 and cells[1][0]["clicks"] == 0
    prior = BUCKETS.grid(decay_prior(BUCKETS, 0.7, 24 * 3600.0))
    for n, row in enumerate(cells):
        for a, cell in enumerate(row):
            # The fixed decay at the band's typical age, times the learned correction.
            assert cell["prior"] == pytest.approx(prior[n, a], abs=1e-4)
            assert cell["multiplier"] == pytest.approx(cell["prior"] * cell["correction"], abs=2e-4)
            low, high = cell["ci90"]
            assert low < cell["multiplier"] < high
            assert low < cell["prior"] < high  # the correction's band holds its prior, 1
            if cell["impressions"] == 0:
                # No evidence: no correction.
                assert cell["correction"] == 1.0
    # The one tired impression went unclicked: its bucket's correction may only fall, and
    # under the fitted strength (the cap: one impression shows no spread) by less than the
    # 4 decimals shown. Movement under evidence: the fitted-strength and recovery tests.
    assert cells[1][0]["correction"] <= 1.0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("off", 1.0),
        ("fixed", 0.5**2),
        # No evidence yet: the fixed decay, times a correction of 1.
        ("learned-mean", 0.5**2),
        ("learned", 0.5**2),
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
    item's CTR under an hour after the last, recovering to x0.9 after a day; the fixed
    decay (seen_gamma 0.7, counts that do not fade: seen_half_life_h one year) knows none
    of the recovery, and the correction's prior is 1 (the fixed decay is right). Served
    with the default mode (the fixed decay x the correction's mean, the prior's strength
    fitted). Compared: the curve /v1/stats shows, prior x correction, in buckets with
    >= 1000 impressions (the < 1 h band gets no visits, bands past 64 h too few); the last
    row's base counts at most 4 (bandits.correction_base), so its cells compare too.
    Observed on seeds 0-2 (2026-12-02): 7, 6 and 8 such cells, mean error 0.025, 0.019,
    0.041, max 0.053, 0.047, 0.085, where the prior is off by 0.38, 0.39, 0.36 on average
    (max 0.67); the fitted strength went to its floor (10), the prior being that wrong.
    Before the cap, the last row showed 0.89-2.17 where the truth is 0.66-0.92. Runs are
    not bit-for-bit repeatable (the snapshot task's timing), hence margins. Asserted per
    seed: at least 5 such buckets, mean error <= 0.07, max <= 0.16, and the prior off by
    >= 0.2 on average there (so that a curve that learned nothing fails).
    """
    for seed in range(3):
        world = FatigueWorld(
            by_bucket(FAST_RECOVERY), np.random.default_rng(seed), half_life_h=24 * 365,
            users=160, visit_chance=(0.25, 0.02), round_h=1.0,
        )  # fmt: skip
        decay = await _run_world(start, world, 600, seed, seen_half_life_h=24 * 365)
        evidenced = decay.evidence[0] >= 1000
        evidenced[0] = False  # the fresh bucket is 1 by definition
        errors = np.abs(decay.prior * decay.curve - FAST_RECOVERY)[evidenced]
        prior_errors = np.abs(decay.prior - FAST_RECOVERY)[evidenced]
        shown = (seed, errors.round(3), prior_errors.round(3), decay.strength)
        assert len(errors) >= 5, shown
        assert errors.mean() <= 0.07 and errors.max() <= 0.16, shown
        assert prior_errors.mean() >= 0.2, shown


async def _learned_over_fixed(start, truth: Truth, mode: str = "learned-mean") -> list[float]:
    """Return, per seed 0-2, the true click chance served late in the run, `mode` / fixed."""
    ratios = []
    for seed in range(3):
        late = {}
        for served in (mode, "fixed"):
            world = FatigueWorld(truth, np.random.default_rng(seed), half_life_h=24.0)
            await _run_world(start, world, 400, seed, seen_decay=served)
            chances = np.array(world.chances)
            late[served] = chances[len(chances) // 2 :].mean()
        ratios.append(late[mode] / late["fixed"])
    return ratios


@pytest.mark.slow
async def test_learned_beats_fixed_where_users_recover_fast(start):
    """The default mode against "fixed" on the same world and seeds, 400 half-hour rounds.

    Metric: the true click chance of what was served over the last half of the run. The
    world: the curve of the test above (users recover within a day), where the fixed decay
    assumes x0.7 per ignored impression and a 24 h half-life. Observed learned-mean / fixed
    on seeds 0-2 (2026-12-02), with the prior strength fitted (the default) and the base's
    count capped at the last row's: 1.067, 1.058, 1.069 (mean 1.065). Set strengths, before
    the cap: 300, three runs: means 1.049, 1.055, 1.052; 1000, two runs: 1.029 and 1.037
    (under this bar). "learned" (a draw per list): 1.049 at 300, 1.034 at 1000. The learned
    curve replacing the fixed decay (the release before: prior the fixed decay, strength
    100): 1.084-1.101.
    Asserted: mean >= 1.04.
    """
    ratios = await _learned_over_fixed(start, by_bucket(FAST_RECOVERY))
    assert np.mean(ratios) >= 1.04, ratios


@pytest.mark.slow
async def test_learned_ties_fixed_where_users_tire_as_it_assumes(start):
    """As above, in exactly the fixed decay's world: x0.7 per ignored impression, counts
    halving per 24 h.

    The learned modes serve the fixed decay times a correction whose prior is 1, so here
    the evidence has nothing to correct. Observed learned-mean / fixed on seeds 0-2
    (2026-12-02), the strength fitted (the default), the base capped: 0.983, 0.979, 0.965
    (mean 0.976). Set strengths, before the cap: 300: 0.974, 0.987, 0.987 (mean 0.983);
    0.974, 0.978, 1.000 (0.984), twice; 1000: 0.991, 0.966, 0.980 (0.979); "learned" at
    1000: 0.986. The release before (the learned curve replacing the fixed decay) scored
    0.944-0.948 here.
    Asserted: mean >= 0.96.
    """
    ratios = await _learned_over_fixed(start, fixed_decay(0.7, 24.0))
    assert np.mean(ratios) >= 0.96, ratios


async def test_a_set_prior_strength_is_served_as_set(start):
    svc = await start(seen_decay_prior_strength=300.0)
    decay = (await svc.client.get("/v1/stats")).json()["seen_decay"]
    assert decay["prior_strength"] == 300 and decay["prior_strength_fitted"] is False


async def test_the_fitted_strength_falls_where_tired_buckets_stray_from_the_fixed_decay(
    make_settings,
):
    settings = make_settings(key_prefix="fit")
    # The fresh bucket: 20 000 impressions at 1 expected click per 10; each tired bucket:
    # 2 000 impressions expecting 200 clicks under the fixed decay. Clicked as expected: the
    # prior holds (the cap); clicked twice as often (users recover faster): it falls.
    evidence = np.zeros((3, BUCKETS.size))
    evidence[:, 0] = (20_000, 2_000, 2_000)
    evidence[:, 1:] = np.array([[2_000], [200], [200]])
    right = SeenDecay.learn(settings, evidence)
    evidence[1, 1:] = 400
    wrong = SeenDecay.learn(settings, evidence)
    assert right.strength_fitted and right.strength == 10_000
    assert wrong.strength < 100 and np.all(wrong.curve[1:] > 1.8)
