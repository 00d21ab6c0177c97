"""The learned seen decay in the service: evidence counted once, the curve served and shown."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as redis

from bandits.fatigue import decay_prior
from service.engine.fatigue import BUCKETS
from service.store.codecs import ServedList
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio

# Bucket of an item seen twice without a click, the last time under an hour ago.
TWICE_JUST_NOW = int(BUCKETS.index([2], [0.0])[0])


@pytest.fixture
async def raw(redis_url: str):
    """A plain Redis client, to read what the service stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _fatigue(raw: redis.Redis) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in (await raw.hgetall("br:{arms}:fatigue")).items()}


async def _served(svc, raw: redis.Redis, user: str, candidates: list[str]) -> tuple[str, ServedList]:
    body = {"user_id": user, "k": len(candidates), "candidates": candidates}
    response = await svc.client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    rec_id = response.json()["rec_id"]
    return rec_id, ServedList.decode(await raw.get(f"br:rec:{{{rec_id}}}"))


async def test_a_served_list_logs_each_items_bucket_and_arm_mean(svc, raw):
    await add_items(svc.client, ["a", "b"])
    crowd = [event("impression", "crowd", "a") for _ in range(30)]
    await send(svc.client, crowd + [event("click", "c1", "a")])
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
    old = dataclasses.replace(served, fatigue=None, means=None)
    assert "fatigue" not in old.encode() and "means" not in old.encode()
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
