"""Cold start: new items are tried but not flooded; new clusters and new users are not blank."""

from __future__ import annotations

import pytest

from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, arm, event, exported_lists, send

pytestmark = pytest.mark.anyio


async def _share_of_new_item(running) -> float:
    """20 items at ~5% CTR with 1,000 impressions each, then a brand-new item."""
    items = [f"old{n}" for n in range(20)]
    await add_items(running.client, [*items, "new"])
    events = [event("impression", "crowd", i) for i in items for _ in range(1000)]
    events += [event("click", f"c{n}", i) for i in items for n in range(50)]
    for start in range(0, len(events), 1000):
        await send(running.client, events[start : start + 1000])
    await running.refresh()
    firsts = []
    for n in range(200):
        body = {"user_id": f"v{n}", "k": 1}
        firsts.append((await running.client.post("/v1/recommend", json=body)).json())
    return sum(f["items"][0]["item_id"] == "new" for f in firsts) / 200


async def test_a_flat_prior_floods_a_new_item(start):
    # Beta(1, 1) has mean 0.5 against a catalog at 5%: it wins almost every draw.
    assert await _share_of_new_item(await start(prior="flat")) > 0.8


async def test_the_catalog_prior_tries_a_new_item_without_flooding(start):
    running = await start(prior="catalog", prior_strength=10)
    share = await _share_of_new_item(running)
    # Beta(0.5, 9.5): mean 5% like the catalog, wide enough to win some draws. Over 200
    # draws the share has sd <= 0.035; the band is many sds wide on both sides.
    assert 0.03 < share < 0.6
    new = await arm(running.client, "new")
    assert new["global"]["alpha"] == pytest.approx(0.5, rel=1e-6)
    assert new["global"]["beta"] == pytest.approx(9.5, rel=1e-6)


async def test_new_clusters_start_from_the_items_global_posterior(start):
    running = await start(prior="catalog", prior_strength=10)
    await two_taste_world(running)
    # x0 has strong global evidence of a 30% CTR before the fit.
    events = [event("impression", "crowd", "x0") for _ in range(1000)]
    events += [event("click", f"c{n}", "x0") for n in range(300)]
    for start_at in (0, 650):
        response = await send(running.client, events[start_at : start_at + 650])
        assert response.status_code == 200, response.text
    fit = await running.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.status_code == 200, fit.text
    x0 = await arm(running.client, "x0")
    for cluster in x0["clusters"]:
        assert cluster["impressions"] == 0  # nothing yet in the new generation
        # ... but the arm believes ~what everyone did, worth 10 impressions.
        assert cluster["alpha"] + cluster["beta"] == pytest.approx(10, rel=1e-6)
        assert cluster["mean"] == pytest.approx(x0["global"]["mean"], rel=1e-6)
        assert 0.28 < cluster["mean"] < 0.42


async def test_users_without_history_are_served_and_credited_as_the_population(start):
    running = await start()
    await two_taste_world(running)
    await running.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    rec = (await running.client.post("/v1/recommend", json={"user_id": "new", "k": 2})).json()
    assert rec["cluster"] is None and rec["membership"] == []
    item = rec["items"][0]["item_id"]
    await send(running.client, [event("impression", "new", item, rec["rec_id"])])
    arms = await arm(running.client, item)
    assert arms["global"]["impressions"] >= 1
    assert all(c["impressions"] == 0 for c in arms["clusters"])
    (line,) = exported_lists((await running.client.get("/v1/admin/logs/export")).text)
    assert line["cluster"] is None
