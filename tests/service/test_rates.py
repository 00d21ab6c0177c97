"""A click implies an impression: no rate the service shows or ranks by exceeds 1."""

from __future__ import annotations

import pytest

from tests.service.helpers import add_items, arm, event, send

pytestmark = pytest.mark.anyio

ITEMS = [f"i{n}" for n in range(10)]


async def test_clicks_before_impressions_leave_the_ranking_exploring(start):
    # Issue 12, D4: after 1 impression and 3 clicks every score was 1.0 and every list the same.
    running = await start(seed=5)
    await add_items(running.client, ITEMS)
    clicks = [event("click", f"u{n}", "i0") for n in range(3)]
    response = await send(running.client, [event("impression", "u9", "i0"), *clicks])
    assert response.status_code == 200, response.text
    await running.refresh()
    tops, propensities = [], []
    for n in range(100):
        body = (
            await running.client.post("/v1/recommend", json={"user_id": f"v{n}", "k": 1})
        ).json()
        tops.append(body["items"][0]["item_id"])
        propensities.append(body["items"][0]["propensity"])
    # Beta(11, 2) for i0 against nine Beta(8, 2): each of the nine tops ~7% of lists, so
    # over 100 lists at least 5 of the 10 items reach the top with overwhelming probability.
    assert len(set(tops)) >= 5, tops
    assert max(propensities) < 1.0
    new = await arm(running.client, "i5")
    assert new["global"]["mean"] == pytest.approx(0.8)  # Laplace's 4/5, not 0.999999
    assert min(new["global"]["alpha"], new["global"]["beta"]) >= 1


async def test_stats_ctr_counts_a_click_as_an_impression(svc):
    # Issue 12, D5: 1 impression and 2 clicks gave ctr 2.0.
    await add_items(svc.client, ITEMS)
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 1})).json()
    item, rec_id = rec["items"][0]["item_id"], rec["rec_id"]
    batch = [event("impression", "u", item, rec_id)]
    batch += [event("click", "u", item, rec_id) for _ in range(2)]
    assert (await send(svc.client, batch)).status_code == 200
    bandit = (await svc.client.get("/v1/stats")).json()["policies"]["bandit"]
    assert (bandit["impressions"], bandit["clicks"]) == (1, 2)  # the counters as sent
    assert bandit["ctr"] == 1.0  # 2 clicks in max(1, 2) impressions
    lo, hi = bandit["ctr_ci95"]
    # Beta(3, 1) has CDF x^3: the equal-tailed bounds are 0.025 and 0.975 to the 1/3.
    assert (lo, hi) == pytest.approx((0.025 ** (1 / 3), 0.975 ** (1 / 3)))
