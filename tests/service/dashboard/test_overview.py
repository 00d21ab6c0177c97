"""GET /v1/overview: what a worker serves from, and the dashboard's page and redirect."""

from __future__ import annotations

import pytest

from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio


async def test_overview_counts_the_catalog_clusters_and_events(svc):
    empty = (await svc.client.get("/v1/overview")).json()
    assert empty["catalog"] == {"items": 0, "active": 0, "with_embedding": 0, "version": 0}
    assert empty["clusters"] == {"gen": 0, "k": 1, "sizes": [], "fitted_at": None, "inertia": None}
    assert empty["events"] == {"impressions": 0, "clicks": 0, "conversions": 0}

    await two_taste_world(svc)
    await add_items(svc.client, ["bare"])
    paused = await svc.client.put("/v1/items/y9", json={"embedding": [0, 1, 0, 0], "active": False})
    assert paused.status_code == 200
    assert (await svc.client.delete("/v1/items/x0")).status_code == 204
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "xfan0", "k": 2})).json()
    shown = [item["item_id"] for item in rec["items"]]
    await send(svc.client, [event("impression", "xfan0", i, rec["rec_id"]) for i in shown])
    await send(svc.client, [event("conversion", "xfan0", shown[0], rec["rec_id"])])
    fit = (await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 0})).json()
    await svc.refresh()

    overview = (await svc.client.get("/v1/overview")).json()
    # Deleted items leave the catalog; inactive ones stay in it, unserved.
    assert overview["catalog"]["items"] == 20
    assert overview["catalog"]["active"] == 19
    assert overview["catalog"]["with_embedding"] == 19
    assert overview["clusters"]["gen"] == fit["gen"] == 1
    assert overview["clusters"]["k"] == 2
    assert overview["clusters"]["sizes"] == fit["sizes"]
    assert overview["clusters"]["inertia"] == pytest.approx(fit["inertia"])
    # 200 clicks of the world less x0's 20 (deleted: out of the catalog), then the list's
    # 2 impressions and 1 conversion.
    assert overview["events"] == {"impressions": 2, "clicks": 180, "conversions": 1}
    # One per count shard each batch changed: the world's clicks, then the two lists.
    store = svc.app.state.engine.store
    assert overview["arms_version"] == (await store.versions()).arms >= 3
    assert 0 <= overview["snapshot_age_s"] < 60


async def test_dashboard_page_is_served_with_a_policy_that_forbids_other_hosts(svc):
    page = await svc.client.get("/dashboard")
    assert page.status_code == 200
    assert 'src="dashboard/static/app.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert (await svc.client.get("/dashboard/static/app.js")).status_code == 200
    home = await svc.client.get("/")
    assert home.status_code == 307 and home.headers["location"] == "dashboard"
