"""Fitting clusters from user histories and serving per-cluster bandits."""

from __future__ import annotations

import numpy as np
import pytest

from tests.service.helpers import add_items, arm, event, send

pytestmark = pytest.mark.anyio


async def _two_taste_world(svc) -> None:
    """Items 'x*' point one way, 'y*' the other; users x-fans click x items, y-fans y items."""
    rng = np.random.default_rng(3)
    ids, embeddings = [], []
    for side, direction in (("x", [1.0, 0.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0, 0.0])):
        for n in range(10):
            ids.append(f"{side}{n}")
            embeddings.append(list(np.array(direction) + rng.normal(0, 0.1, 4)))
    await add_items(svc.client, ids, embeddings)
    events = []
    for side in ("x", "y"):
        for user in range(20):
            events += [event("click", f"{side}fan{user}", f"{side}{n}") for n in range(5)]
    await send(svc.client, events)


async def test_fit_separates_tastes_and_assigns_users(svc):
    await _two_taste_world(svc)
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.status_code == 200, fit.text
    body = fit.json()
    assert body["gen"] == 1 and body["k"] == 2 and body["n_users"] == 40
    assert sorted(body["sizes"]) == [20, 20]
    x_cluster = (await svc.client.get("/v1/users/xfan0")).json()["cluster"]
    y_cluster = (await svc.client.get("/v1/users/yfan0")).json()["cluster"]
    assert x_cluster != y_cluster
    for n in range(1, 20):
        assert (await svc.client.get(f"/v1/users/xfan{n}")).json()["cluster"] == x_cluster
    # Users without history start in cluster 0.
    assert (await svc.client.get("/v1/users/nobody")).json()["cluster"] == 0
    # A recommend for a user is served (and logged) under their cluster.
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "yfan3", "k": 3})).json()
    assert rec["cluster"] == y_cluster
    await send(svc.client, [event("click", "yfan3", rec["items"][0]["item_id"], rec["rec_id"])])
    arms = await arm(svc.client, rec["items"][0]["item_id"])
    assert arms["gen"] == 1 and len(arms["clusters"]) == 2
    assert arms["clusters"][y_cluster]["clicks"] == 1
    assert arms["clusters"][x_cluster]["clicks"] == 0


async def test_per_cluster_bandits_rank_by_their_own_cluster(svc):
    await _two_taste_world(svc)
    await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    # After the fit, x-fans click x0 half the time and ignore y0; y-fans the reverse.
    # Globally x0 and y0 look the same, so only per-cluster arms can tell them apart.
    events = []
    for mine, other in (("x", "y"), ("y", "x")):
        for n in range(30):
            user = f"{mine}fan{n % 20}"
            events += [event("impression", user, f"{mine}0") for _ in range(2)]
            events += [event("click", user, f"{mine}0"), event("impression", user, f"{other}0")]
    await send(svc.client, events)
    await svc.refresh()
    x0, y0 = await arm(svc.client, "x0"), await arm(svc.client, "y0")
    assert x0["global"]["mean"] == y0["global"]["mean"]
    for side in ("x", "y"):
        # A fresh user with the same taste, assigned from one click on another item.
        await send(svc.client, [event("click", f"new-{side}", f"{side}5")])
        for _ in range(20):
            req = {"user_id": f"new-{side}", "k": 1, "candidates": ["x0", "y0"]}
            got = await svc.client.post("/v1/recommend", json=req)
            # Beta(31, 31) against Beta(1, 31): the other side's item essentially never wins.
            assert got.json()["items"][0]["item_id"] == f"{side}0"


async def test_fit_needs_enough_users(svc):
    await add_items(svc.client, ["a"], [[1.0, 0.0]])
    await send(svc.client, [event("click", "u", "a")])
    response = await svc.client.post("/v1/admin/clusters/fit", json={"k": 8})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "k"


async def test_feedback_through_another_worker_credits_the_new_generation(start):
    first = await start(snapshot_ms=600_000, stale_after_s=700)
    second = await start(snapshot_ms=600_000, stale_after_s=700)
    await _two_taste_world(first)
    fit = await first.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.json()["gen"] == 1
    # The second worker has not refreshed since the fit; its feedback must still use gen 1.
    await send(second.client, [event("click", "xfan0", "x1")])
    arms = await arm(second.client, "x1")
    assert arms["gen"] == 1
    assert sum(c["clicks"] for c in arms["clusters"]) == 1
