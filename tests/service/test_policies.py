"""Exploration share, baseline (apprentice) mode, mixture propensities and /v1/stats."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from service.config import Settings
from service.main import create_app
from service.schemas import RecommendRequest
from tests.service.helpers import add_items, event, exported_lists, send

pytestmark = pytest.mark.anyio

ITEMS = [f"i{n}" for n in range(8)]


async def _recommend(running, **body):
    response = await running.client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _skewed_catalog(running) -> None:
    """Give i0 the most clicks and i7 the fewest, from other users."""
    await add_items(running.client, ITEMS)
    events = []
    for n, item in enumerate(ITEMS):
        events += [event("impression", f"w{n}{j}", item) for j in range(40)]
        events += [event("click", f"w{n}{j}", item) for j in range(8 - n)]
    await send(running.client, events)
    await running.refresh()


async def test_full_exploration_serves_uniformly_at_random_with_exact_propensities(start):
    """With exploration 1, each of 8 items is in a k=2 list with chance 1/4.

    2,000 lists (4,000 slots): an item's count is Binomial(2000, 0.25), sd 19.4; the
    tolerance of 80 is 4.1 sd. A ranker that followed the clicks would put i0 in most lists.
    """
    running = await start(exploration=1.0)
    await _skewed_catalog(running)
    recommender = running.recommender
    served = Counter()
    for n in range(2_000):
        response = await recommender.recommender.recommend(
            RecommendRequest(user_id=f"u{n % 50}", k=2)
        )
        assert response.policy == "explore"
        assert [item.propensity for item in response.items] == [0.25, 0.25]
        served.update(item.item_id for item in response.items)
    for item in ITEMS:
        assert abs(served[item] - 500) <= 80, served


@pytest.mark.parametrize("samples", [64, None])
async def test_logged_propensities_match_how_often_the_mixture_serves_each_item(start, samples):
    """Exploration 0.3 on top of the bandit: the logged propensity of each item (averaged
    where it was served) matches the share of 3,000 lists that contained it within 0.04,
    with 64 draws and with the default (4).

    Logging the bandit's own probability instead is off by 0.3 x (p_TS - k/n): tried,
    it fails here on i0 (0.75 logged against a 0.60 share). Counting the serving draw as
    one of only M + 1 = 5 samples (instead of one of 4 x 32 + 1 own draws) biases the
    average up by (1 - p) / 5: tried, it fails here too.
    """
    settings = {} if samples is None else {"propensity_samples": samples}
    running = await start(exploration=0.3, **settings)
    await _skewed_catalog(running)
    recommender = running.recommender
    lists, logged = Counter(), {item: [] for item in ITEMS}
    policies = Counter()
    n_lists = 3_000
    for _ in range(n_lists):
        # One user with no seen state keeps the policy identical across requests.
        response = await recommender.recommender.recommend(RecommendRequest(user_id="same", k=2))
        policies[response.policy] += 1
        for item in response.items:
            lists[item.item_id] += 1
            logged[item.item_id].append(item.propensity)
    # Binomial(3000, 0.3): sd 25; 4 sd.
    assert abs(policies["explore"] - 900) <= 100, policies
    rarely_ranked = []
    for item in ITEMS:
        share = lists[item] / n_lists
        assert np.mean(logged[item]) == pytest.approx(share, abs=0.04), (item, share)
        if share < 0.2:
            rarely_ranked.append(item)
    # Items the bandit almost never ranks are there through exploration only: 0.3 x 2/8.
    assert rarely_ranked, lists
    for item in rarely_ranked:
        assert lists[item] / n_lists >= 0.3 * 0.25 - 0.03


async def test_baseline_mode_serves_the_most_clicked_while_the_bandit_learns(start):
    running = await start(mode="baseline")
    await _skewed_catalog(running)
    body = await _recommend(running, user_id="u1", k=3)
    assert body["policy"] == "baseline"
    assert [i["item_id"] for i in body["items"]] == ["i0", "i1", "i2"]
    assert [i["propensity"] for i in body["items"]] == [1.0, 1.0, 1.0]
    assert [i["score"] for i in body["items"]] == [8.0, 7.0, 6.0]
    # The bandit still learns from feedback on the baseline's lists ...
    before = (await running.client.get("/v1/arms/i1")).json()["global"]["impressions"]
    rec = body["rec_id"]
    await send(
        running.client, [event("impression", "u1", "i1", rec), event("click", "u1", "i1", rec)]
    )
    after = (await running.client.get("/v1/arms/i1")).json()["global"]
    assert after["impressions"] == before + 1
    # ... and /v1/stats counts the list and its feedback for the baseline.
    stats = (await running.client.get("/v1/stats")).json()
    assert stats["mode"] == "baseline"
    baseline = stats["policies"]["baseline"]
    assert (baseline["lists"], baseline["impressions"], baseline["clicks"]) == (1, 1, 1)
    assert baseline["ctr"] == 1.0
    assert "bandit" not in stats["policies"]


async def test_caller_order_baseline_keeps_the_candidates_order(start):
    running = await start(mode="baseline", baseline="caller")
    await _skewed_catalog(running)
    body = await _recommend(running, user_id="u1", k=3, candidates=["i5", "i2", "i7", "i0"])
    assert [i["item_id"] for i in body["items"]] == ["i5", "i2", "i7"]
    # Without candidates, popularity.
    body = await _recommend(running, user_id="u1", k=2)
    assert [i["item_id"] for i in body["items"]] == ["i0", "i1"]


async def test_baseline_honours_pool_quotas_and_exclusions(start):
    running = await start(mode="baseline")
    await add_items(running.client, ITEMS)
    response = await running.client.post(
        "/v1/items/bulk", json={"items": [{"item_id": "n1", "pools": ["new"]}]}
    )
    assert response.status_code == 200, response.text
    await send(running.client, [event("click", f"w{n}", "i3") for n in range(5)])
    await running.refresh()
    body = await _recommend(running, user_id="u", k=2, pools={"new": 1}, exclude=["i0"])
    assert {i["item_id"] for i in body["items"]} == {"i3", "n1"}


async def test_stats_count_each_event_once_and_compare_policies(start):
    """Agreement counts the served items the other policy's list also had; replay does the
    same on exploration lists; a replayed batch adds nothing."""
    running = await start(exploration=0.5)
    await _skewed_catalog(running)
    served = {"bandit": [], "explore": []}
    while min(len(v) for v in served.values()) < 20:
        body = await _recommend(running, user_id=f"u{sum(map(len, served.values()))}", k=2)
        served[body["policy"]].append(body)
    batch = []
    for bodies in served.values():
        for body in bodies[:20]:
            first = body["items"][0]["item_id"]
            batch += [
                event("impression", body["user_id"], first, body["rec_id"]),
                event("click", body["user_id"], first, body["rec_id"]),
            ]
    assert (await send(running.client, batch)).json() == {
        "accepted": 80,
        "duplicates": 0,
        "unknown_rec_ids": [],
    }
    assert (await send(running.client, batch)).json() == {
        "accepted": 0,
        "duplicates": 80,
        "unknown_rec_ids": [],
    }
    stats = (await running.client.get("/v1/stats")).json()
    for policy in ("bandit", "explore"):
        counted = stats["policies"][policy]
        assert counted["lists"] == len(served[policy])
        assert (counted["impressions"], counted["clicks"], counted["ctr"]) == (20, 20, 1.0)
        lo, hi = counted["ctr_ci95"]
        # Beta(21, 1) has CDF x^21: the equal-tailed bounds are 0.025 and 0.975 to the 1/21.
        assert (lo, hi) == pytest.approx((0.025 ** (1 / 21), 0.975 ** (1 / 21)))
    # Recompute the expected agreement and replay counts from the logged shadow lists.
    logs = exported_lists((await running.client.get("/v1/admin/logs/export")).text)
    shadows = {line["rec_id"]: line["shadows"] for line in logs}
    assert {line["policy"] for line in logs} == {"bandit", "explore"}

    def also_in(bodies, policy):
        return sum(b["items"][0]["item_id"] in shadows[b["rec_id"]][policy] for b in bodies[:20])

    expected = {
        ("agreement", "baseline"): also_in(served["bandit"], "baseline"),
        ("replay", "bandit"): also_in(served["explore"], "bandit"),
        ("replay", "baseline"): also_in(served["explore"], "baseline"),
    }
    assert sum(expected.values()) > 0  # the check below is not vacuous
    for (view, policy), n in expected.items():
        counted = stats[view].get(policy, {"impressions": 0, "clicks": 0})
        assert (counted["impressions"], counted["clicks"]) == (n, n), (view, policy)
    assert stats["since"] is not None
    reset = await running.client.delete("/v1/stats")
    assert reset.status_code == 204
    stats = (await running.client.get("/v1/stats")).json()
    assert stats["policies"] == {} and stats["since"] is not None


def test_openapi_shows_policy_and_stats():
    schema = create_app(Settings(redis_url="redis://unused")).openapi()
    assert "/v1/stats" in schema["paths"]
    response = schema["components"]["schemas"]["RecommendResponse"]
    assert "policy" in response["properties"]
    assert response["examples"][0]["policy"] == "bandit"
    assert schema["components"]["schemas"]["StatsOut"]["examples"]
    assert math.isfinite(schema["components"]["schemas"]["StatsOut"]["examples"][0]["exploration"])
