"""The recommend -> feedback -> learn loop through the ASGI app, against real Redis."""

from __future__ import annotations

import pytest

from tests.service.helpers import add_items, arm, event, send

pytestmark = pytest.mark.anyio


async def test_recommend_returns_k_active_items_and_logs_them(svc):
    await add_items(svc.client, [f"i{n}" for n in range(20)])
    await svc.refresh()
    response = await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == "u1" and body["cluster"] == 0 and body["stale"] is False
    ids = [i["item_id"] for i in body["items"]]
    assert len(ids) == 5 == len(set(ids))
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 1 for s in scores)
    # The list is logged: feedback naming an item outside it is refused.
    other = next(f"i{n}" for n in range(20) if f"i{n}" not in ids)
    refused = await send(svc.client, [event("click", "u1", other, body["rec_id"])])
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "item_not_served"


async def test_counts_are_exact_after_impressions_and_clicks(start):
    svc = await start(prior="flat")
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 2})).json()
    events = [event("impression", "u1", "a", rec["rec_id"]) for _ in range(7)]
    events += [event("click", "u1", "a", rec["rec_id"]) for _ in range(3)]
    events += [event("impression", "u2", "b") for _ in range(4)]
    response = await send(svc.client, events)
    assert response.json() == {"accepted": 14, "duplicates": 0, "unknown_rec_ids": []}
    a = await arm(svc.client, "a")
    assert a["global"]["impressions"] == 7 and a["global"]["clicks"] == 3
    assert a["global"]["alpha"] == 1 + 3 and a["global"]["beta"] == 1 + 4
    assert a["global"]["mean"] == pytest.approx(4 / 9)
    lo, hi = a["global"]["ci95"]
    assert 0 < lo < 4 / 9 < hi < 1
    assert a["clusters"] == [{"cluster": 0, **a["global"]}]
    b = await arm(svc.client, "b")
    assert (b["global"]["impressions"], b["global"]["clicks"]) == (4, 0)


async def test_replayed_batch_counts_nothing(svc):
    await add_items(svc.client, ["a"])
    batch = [event("impression", "u1", "a"), event("click", "u1", "a")]
    assert (await send(svc.client, batch)).json() == {
        "accepted": 2,
        "duplicates": 0,
        "unknown_rec_ids": [],
    }
    assert (await send(svc.client, batch)).json() == {
        "accepted": 0,
        "duplicates": 2,
        "unknown_rec_ids": [],
    }
    # A batch repeating one event_id counts it once.
    twice = event("impression", "u1", "a")
    assert (await send(svc.client, [twice, twice])).json() == {
        "accepted": 1,
        "duplicates": 1,
        "unknown_rec_ids": [],
    }
    a = await arm(svc.client, "a")
    assert (a["global"]["impressions"], a["global"]["clicks"]) == (2, 1)
    user = (await svc.client.get("/v1/users/u1")).json()
    assert user["recent_clicks"] == ["a"]  # the replayed click was not added again


async def test_the_bandit_learns_which_item_wins(svc):
    items = [f"i{n}" for n in range(10)]
    await add_items(svc.client, items)
    # i3 was clicked 40 times in 100 impressions, every other item 1 in 100.
    events = []
    for item in items:
        clicks = 40 if item == "i3" else 1
        events += [event("impression", f"u{item}", item) for _ in range(100)]
        events += [event("click", f"u{item}{n}", item) for n in range(clicks)]
    for start in range(0, len(events), 1000):
        assert (await send(svc.client, events[start : start + 1000])).status_code == 200
    await svc.refresh()
    firsts = []
    for n in range(50):
        body = (await svc.client.post("/v1/recommend", json={"user_id": f"x{n}", "k": 1})).json()
        firsts.append(body["items"][0]["item_id"])
    # Posterior Beta(41, 61) vs Beta(2, 100): i3 wins essentially every draw.
    assert firsts.count("i3") >= 49


async def test_seen_decay_pushes_an_ignored_item_down_and_a_click_resets_it(start):
    # The fixed decay, gamma ** unclicked; the learned one is tested in test_seen_decay.py.
    svc = await start(seen_gamma=0.5, seen_decay="fixed")
    await add_items(svc.client, ["a", "b"])
    # Equal, well-known posteriors for both items (other users' feedback).
    events = []
    for item in ("a", "b"):
        events += [event("impression", "crowd", item) for _ in range(200)]
        events += [event("click", f"c{n}", item) for n in range(40)]
    await send(svc.client, events)
    # u1 saw "a" five times without clicking.
    await send(svc.client, [event("impression", "u1", "a") for _ in range(5)])
    await svc.refresh()
    user = (await svc.client.get("/v1/users/u1")).json()
    (seen,) = user["seen"]
    assert seen["item_id"] == "a"
    assert seen["unclicked"] == pytest.approx(5, abs=1e-3)
    assert seen["multiplier"] == pytest.approx(0.5**5, rel=1e-3)

    async def share_of_a_first(user_id: str) -> float:
        firsts = []
        for _ in range(40):
            req = {"user_id": user_id, "k": 1}
            firsts.append((await svc.client.post("/v1/recommend", json=req)).json()["items"][0])
        return sum(f["item_id"] == "a" for f in firsts) / len(firsts)

    assert await share_of_a_first("u1") == 0  # 0.03 x sample never beats b's ~0.2
    assert 0.2 < await share_of_a_first("someone-else") < 0.8
    await send(svc.client, [event("click", "u1", "a")])
    assert (await svc.client.get("/v1/users/u1")).json()["seen"] == []
    assert 0.2 < await share_of_a_first("u1") < 0.8


async def test_impression_and_click_in_one_batch_leave_no_penalty(svc):
    await add_items(svc.client, ["a"])
    # The click is listed first; impressions are still applied before clicks.
    await send(svc.client, [event("click", "u1", "a"), event("impression", "u1", "a")])
    assert (await svc.client.get("/v1/users/u1")).json()["seen"] == []


async def test_candidates_pool_and_exclude_restrict_the_list(svc):
    body = {
        "items": [
            {"item_id": "n1", "pools": ["new"]},
            {"item_id": "n2", "pools": ["new"]},
            {"item_id": "n3", "pools": ["new"], "active": False},
            {"item_id": "o1"},
        ]
    }
    assert (await svc.client.post("/v1/items/bulk", json=body)).status_code == 200
    await svc.refresh()
    recommend = svc.client.post
    got = (await recommend("/v1/recommend", json={"user_id": "u", "pool": "new", "k": 10})).json()
    assert sorted(i["item_id"] for i in got["items"]) == ["n1", "n2"]
    req = {"user_id": "u", "candidates": ["o1", "n1", "n1"], "exclude": ["n1"], "k": 10}
    got = (await recommend("/v1/recommend", json=req)).json()
    assert [i["item_id"] for i in got["items"]] == ["o1"]
    req = {"user_id": "u", "k": 10, "exclude": ["n1", "n2", "o1"]}
    assert (await recommend("/v1/recommend", json=req)).json()["items"] == []


async def test_a_new_item_is_servable_before_the_next_refresh(svc):
    await add_items(svc.client, ["a"])
    req = {"user_id": "u", "candidates": ["a"], "k": 1}
    response = await svc.client.post("/v1/recommend", json=req)
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["item_id"] == "a"


async def test_deleted_item_is_not_served_but_keeps_its_counts(svc):
    await add_items(svc.client, ["a", "b"])
    await send(svc.client, [event("impression", "u", "a"), event("click", "u", "a")])
    assert (await svc.client.delete("/v1/items/a")).status_code == 204
    assert (await svc.client.get("/v1/items/a")).status_code == 404
    assert (await svc.client.delete("/v1/items/a")).status_code == 404
    await svc.refresh()
    for n in range(10):
        got = (await svc.client.post("/v1/recommend", json={"user_id": f"u{n}", "k": 5})).json()
        assert [i["item_id"] for i in got["items"]] == ["b"]
    a = await arm(svc.client, "a")
    assert (a["global"]["impressions"], a["global"]["clicks"]) == (1, 1)
    assert (await svc.client.get("/v1/arms/never")).status_code == 404


async def test_items_round_trip_and_share_one_dimension(svc):
    item = {"embedding": [0.9, 0.1], "tags": ["drama"], "pools": ["new"], "active": True}
    put = await svc.client.put("/v1/items/x1", json=item)
    assert put.status_code == 200, put.text
    assert put.json()["embedding"] == [0.9, 0.1]
    got = (await svc.client.get("/v1/items/x1")).json()
    # Stored as float32, shown as the shortest decimal of that float32: no 0.899999976.
    assert {k: got[k] for k in item} == item and got["item_id"] == "x1"
    wrong = await svc.client.put("/v1/items/x2", json={"embedding": [1.0, 2.0, 3.0]})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "dimension_mismatch"
    assert (await svc.client.get("/v1/items/x2")).status_code == 404
    # A bulk call with one bad dimension writes nothing.
    bulk = {"items": [{"item_id": "y1", "embedding": [1.0, 0.0]}, {"item_id": "y2",
            "embedding": [1.0]}]}  # fmt: skip
    assert (await svc.client.post("/v1/items/bulk", json=bulk)).status_code == 422
    assert (await svc.client.get("/v1/items/y1")).status_code == 404


async def test_arms_listing_is_sorted_by_mean_and_paged(svc):
    await add_items(svc.client, ["a", "b", "c"])
    events = [event("impression", "u", i) for i in ("a", "b", "c") for _ in range(10)]
    events += [event("click", "u", "b") for _ in range(5)] + [event("click", "u", "c")]
    await send(svc.client, events)
    listing = (await svc.client.get("/v1/arms", params={"cluster": 0})).json()
    assert [a["item_id"] for a in listing["arms"]] == ["b", "c", "a"]
    assert listing["total"] == 3
    page = (await svc.client.get("/v1/arms", params={"limit": 1, "offset": 1})).json()
    assert [a["item_id"] for a in page["arms"]] == ["c"]
    missing = await svc.client.get("/v1/arms", params={"cluster": 3})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "cluster"


async def test_metrics_count_requests_and_feedback(svc):
    await add_items(svc.client, ["a"])
    await send(svc.client, [event("impression", "u", "a")])
    text = (await svc.client.get("/metrics")).text
    assert 'banditrec_feedback_events_total{outcome="accepted",type="impression"} 1.0' in text
    assert 'route="/v1/items/bulk"' in text
    assert "banditrec_snapshot_age_seconds" in text


async def test_health_endpoints(svc):
    assert (await svc.client.get("/healthz")).json() == {"status": "ok"}
    ready = await svc.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


async def test_a_worker_catches_up_with_catalog_changes_made_through_another(start):
    # Two apps on one Redis stand for two workers; their periodic refresh is far away.
    first = await start(snapshot_ms=600_000, stale_after_s=700)
    second = await start(snapshot_ms=600_000, stale_after_s=700)
    await add_items(first.client, ["a", "b"])
    got = (await second.client.post("/v1/recommend", json={"user_id": "u", "k": 5})).json()
    assert sorted(i["item_id"] for i in got["items"]) == ["a", "b"]
    assert (await first.client.delete("/v1/items/a")).status_code == 204
    got = (await second.client.post("/v1/recommend", json={"user_id": "u", "k": 5})).json()
    assert [i["item_id"] for i in got["items"]] == ["b"]


async def test_feedback_names_rec_ids_that_match_no_served_list(svc):
    """A placeholder or expired rec_id is counted but reported, so a broken client shows."""
    await add_items(svc.client, ["i1", "i2"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 1})).json()
    served = rec["items"][0]["item_id"]
    events = [
        event("impression", "u1", served, rec["rec_id"]),
        event("impression", "u1", "i2", "REC_ID"),
        event("click", "u1", "i2", "REC_ID"),
    ]
    body = (await send(svc.client, events)).json()
    assert body == {"accepted": 3, "duplicates": 0, "unknown_rec_ids": ["REC_ID"]}
