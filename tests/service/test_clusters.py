"""Fitting clusters from user histories and serving per-cluster bandits."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine.recommend import _posteriors_for
from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, arm, event, raw_client, send, stored_counts

pytestmark = pytest.mark.anyio


async def test_fit_separates_tastes_and_assigns_users(start):
    svc = await start(membership="hard")
    await two_taste_world(svc)
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
    # Users without history are served the population's (global) arms.
    nobody = (await svc.client.get("/v1/users/nobody")).json()
    assert nobody["cluster"] is None and nobody["membership"] == []
    # A recommend for a user is served (and logged) under their cluster.
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "yfan3", "k": 3})).json()
    assert rec["cluster"] == y_cluster
    await send(svc.client, [event("click", "yfan3", rec["items"][0]["item_id"], rec["rec_id"])])
    arms = await arm(svc.client, rec["items"][0]["item_id"])
    assert arms["gen"] == 1 and len(arms["clusters"]) == 2
    assert arms["clusters"][y_cluster]["clicks"] == 1
    assert arms["clusters"][x_cluster]["clicks"] == 0


@pytest.mark.parametrize("membership", ["hard", "soft"])
async def test_per_cluster_bandits_rank_by_their_own_cluster(start, membership):
    svc = await start(membership=membership)
    await two_taste_world(svc)
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
    await two_taste_world(first)
    fit = await first.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.json()["gen"] == 1
    # The second worker has not refreshed since the fit; its feedback must still use gen 1.
    await send(second.client, [event("click", "xfan0", "x1")])
    arms = await arm(second.client, "x1")
    assert arms["gen"] == 1
    assert sum(c["clicks"] for c in arms["clusters"]) == pytest.approx(1, abs=1e-9)


async def _three_taste_world(svc) -> None:
    """Items in three directions; 'mixed' users click both x and y items."""
    rng = np.random.default_rng(4)
    directions = {"x": [1.0, 0.0, 0.0], "y": [0.0, 1.0, 0.0], "z": [0.0, 0.0, 1.0]}
    ids, embeddings = [], []
    for side, direction in directions.items():
        for n in range(8):
            ids.append(f"{side}{n}")
            embeddings.append(list(np.array(direction) + rng.normal(0, 0.05, 3)))
    await add_items(svc.client, ids, embeddings)
    events = []
    for side in directions:
        for user in range(10):
            events += [event("click", f"{side}fan{user}", f"{side}{n}") for n in range(4)]
    events += [event("click", "mixed", item) for item in ("x0", "x1", "y0", "y1")]
    await send(svc.client, events)
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 3, "seed": 2})
    assert fit.status_code == 200, fit.text


async def test_soft_membership_weights_are_shown_and_sum_to_one(start):
    svc = await start(membership="soft", soft_temperature=0.1, soft_top_m=2)
    await _three_taste_world(svc)
    fan = (await svc.client.get("/v1/users/xfan0")).json()
    assert fan["membership"][0]["cluster"] == fan["cluster"]
    assert fan["membership"][0]["weight"] > 0.99  # far from the other centres
    mixed = (await svc.client.get("/v1/users/mixed")).json()
    weights = [m["weight"] for m in mixed["membership"]]
    assert len(weights) == 2 and sum(weights) == pytest.approx(1.0)
    assert 0.3 < weights[1] <= weights[0] < 0.7  # halfway between x and y
    x_cluster = fan["cluster"]
    y_cluster = (await svc.client.get("/v1/users/yfan0")).json()["cluster"]
    assert {m["cluster"] for m in mixed["membership"]} == {x_cluster, y_cluster}


async def test_soft_feedback_splits_one_event_exactly_across_clusters(start, redis_url):
    svc = await start(membership="soft", soft_temperature=0.1, soft_top_m=2)
    await _three_taste_world(svc)
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "mixed", "k": 3})).json()
    assert len(rec["membership"]) == 2
    item = rec["items"][0]["item_id"]
    await send(svc.client, [event("click", "mixed", item, rec["rec_id"])])
    arms = await arm(svc.client, item)
    shares = {c["cluster"]: c["clicks"] for c in arms["clusters"]}
    for member in rec["membership"]:
        assert shares[member["cluster"]] == pytest.approx(member["weight"], abs=2e-6)
    # Stored in millionths: the shares of the event add up to exactly one event.
    client = raw_client(redis_url)
    keys = svc.app.state.engine.store.keys
    raw = [(await stored_counts(client, keys, "clk", 1, c)).get(item, 0) for c in range(3)]
    await client.aclose()
    assert sum(raw) == 1_000_000


async def test_soft_scores_sample_the_weight_mixed_posterior(start):
    svc = await start(membership="soft", soft_temperature=0.1, soft_top_m=2)
    await _three_taste_world(svc)
    events = [event("impression", f"xfan{n}", "x0") for n in range(10) for _ in range(5)]
    events += [event("click", f"xfan{n}", "x0") for n in range(10) for _ in range(3)]
    await send(svc.client, events)
    await svc.refresh()
    recommender = svc.recommender
    snap = recommender.snapshot
    user = (await recommender.store.read_users(["mixed"], 50))[0]["mixed"]
    membership, _, _ = recommender.users.membership(snap, user)
    positions = np.arange(len(snap.catalog))
    alpha, beta = _posteriors_for(snap, membership, positions)
    rows = list(membership.clusters)
    weights = np.array(membership.weights)
    np.testing.assert_allclose(alpha, weights @ snap.posteriors.alpha[rows])
    np.testing.assert_allclose(beta, weights @ snap.posteriors.beta[rows])
    # x0 is loved by the x cluster only; the mixed user's belief sits between its clusters'.
    x0 = snap.catalog.index["x0"]
    means = snap.posteriors.alpha[rows, x0] / (
        snap.posteriors.alpha[rows, x0] + snap.posteriors.beta[rows, x0]
    )
    mixed_mean = alpha[x0] / (alpha[x0] + beta[x0])
    assert means.min() < mixed_mean < means.max()
