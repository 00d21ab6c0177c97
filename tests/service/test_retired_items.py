"""Feedback on items deleted after they were served still counts; never-known items are 422."""

from __future__ import annotations

import pytest

from tests.service.helpers import add_items, arm, event, send

pytestmark = pytest.mark.anyio


async def _served(running, user: str, k: int) -> dict:
    response = await running.client.post("/v1/recommend", json={"user_id": user, "k": k})
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_feedback_on_an_item_deleted_after_it_was_served_counts(svc):
    # Issue 12, D6: the batch failed with 422 forever and its valid events were lost.
    await add_items(svc.client, ["a", "b"])
    await send(svc.client, [event("impression", "u0", "a")])  # a has counts
    await svc.refresh()
    rec = await _served(svc, "u", 2)
    assert {i["item_id"] for i in rec["items"]} == {"a", "b"}
    assert (await svc.client.delete("/v1/items/a")).status_code == 204
    batch = [
        event("impression", "u", "a", rec["rec_id"]),
        event("click", "u", "a", rec["rec_id"]),
        event("impression", "u", "b", rec["rec_id"]),
        event("click", "u2", "a"),  # no rec_id: known by its counts
    ]
    response = await send(svc.client, batch)
    assert response.json() == {"accepted": 4, "duplicates": 0, "unknown_rec_ids": []}
    a = await arm(svc.client, "a")
    assert (a["global"]["impressions"], a["global"]["clicks"]) == (2, 2)
    assert (await arm(svc.client, "b"))["global"]["impressions"] == 1
    user = (await svc.client.get("/v1/users/u")).json()
    assert user["recent_clicks"] == ["a"]


async def test_an_item_without_counts_is_known_by_the_list_that_served_it(svc):
    await add_items(svc.client, ["a"])
    await svc.refresh()
    rec = await _served(svc, "u", 1)
    assert (await svc.client.delete("/v1/items/a")).status_code == 204
    response = await send(svc.client, [event("impression", "u", "a", rec["rec_id"])])
    assert response.json() == {"accepted": 1, "duplicates": 0, "unknown_rec_ids": []}
    assert (await arm(svc.client, "a"))["global"]["impressions"] == 1


async def test_items_never_known_are_refused(svc):
    await add_items(svc.client, ["a", "gone"])
    assert (await svc.client.delete("/v1/items/gone")).status_code == 204
    for item in ("never", "gone"):  # gone: deleted before any count or served list
        response = await send(
            svc.client, [event("impression", "u", "a"), event("click", "u", item)]
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("unknown_item", "events[1].item_id")
    assert (await arm(svc.client, "a"))["global"]["impressions"] == 0
