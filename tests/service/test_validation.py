"""Bad input gets a 4xx with the one JSON error shape naming the field; nothing is written."""

from __future__ import annotations

import time

import pytest

from tests.service.helpers import add_items, arm, event, send

pytestmark = pytest.mark.anyio

GOOD = {"event_id": "e1", "type": "impression", "user_id": "u", "item_id": "a"}


def _error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "field"} and error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": [{**GOOD, "type": "purchase"}]}, "events[0].type"),
        ({"events": [GOOD, {**GOOD, "event_id": ""}]}, "events[1].event_id"),
        ({"events": [{**GOOD, "user_id": "a{b}"}]}, "events[0].user_id"),
        ({"events": [{**GOOD, "item_id": "x" * 129}]}, "events[0].item_id"),
        ({"events": [{**GOOD, "ts": "soon"}]}, "events[0].ts"),
        ({"events": [{**GOOD, "surprise": 1}]}, "events[0].surprise"),
        ({"events": [GOOD] * 1001}, "events"),
        ({}, "events"),
    ],
)
async def test_bad_feedback_bodies_are_422_with_the_field(svc, body, field):
    _error(await svc.client.post("/v1/feedback", json=body), 422, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "k": 0}, "k"),
        ({"user_id": "u", "k": 101}, "k"),
        ({"k": 3}, "user_id"),
        ({"user_id": "u", "candidates": []}, "candidates"),
        ({"user_id": "u", "candidates": ["ok", "not ok"]}, "candidates[1]"),
        ({"user_id": "u", "pool": "x" * 65}, "pool"),
    ],
)
async def test_bad_recommend_bodies_are_422_with_the_field(svc, body, field):
    _error(await svc.client.post("/v1/recommend", json=body), 422, field)


async def test_malformed_json_is_422(svc):
    response = await svc.client.post(
        "/v1/feedback", content=b"{not json", headers={"content-type": "application/json"}
    )
    _error(response, 422)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"embedding": []}, "embedding"),
        ({"embedding": [1.0, "nan"]}, "embedding[1]"),
        ({"embedding": [0.1] * 4097}, "embedding"),
        ({"tags": ["ok", ""]}, "tags[1]"),
        ({"active": "maybe"}, "active"),
    ],
)
async def test_bad_items_are_422_with_the_field(svc, item, field):
    _error(await svc.client.put("/v1/items/a", json=item), 422, field)


async def test_bad_item_id_in_path_is_422(svc):
    _error(await svc.client.get("/v1/items/a%7Bb%7D"), 422, "item_id")


async def test_duplicate_items_in_bulk_are_422(svc):
    body = {"items": [{"item_id": "a"}, {"item_id": "b"}, {"item_id": "a"}]}
    _error(await svc.client.post("/v1/items/bulk", json=body), 422, "items[2].item_id")


async def test_unknown_item_in_feedback_writes_nothing(svc):
    await add_items(svc.client, ["a"])
    batch = [event("impression", "u", "a"), event("click", "u", "a"), event("click", "u", "zz")]
    error = _error(await send(svc.client, batch), 422, "events[2].item_id")
    assert error["code"] == "unknown_item"
    a = await arm(svc.client, "a")
    assert (a["global"]["impressions"], a["global"]["clicks"]) == (0, 0)
    user = (await svc.client.get("/v1/users/u")).json()
    assert user["recent_clicks"] == [] and user["seen"] == []
    # The same event_ids are still fresh: nothing was consumed by the refused batch.
    assert (await send(svc.client, batch[:2])).json() == {
        "accepted": 2,
        "duplicates": 0,
        "unknown_rec_ids": [],
    }


async def test_events_older_than_the_retention_are_refused(svc):
    await add_items(svc.client, ["a"])
    old = event("impression", "u", "a", ts=time.time() - 8 * 86400)
    _error(await send(svc.client, [event("impression", "u", "a"), old]), 422, "events[1].ts")
    future = event("impression", "u", "a", ts=time.time() + 3600)
    _error(await send(svc.client, [future]), 422, "events[0].ts")
    assert (await arm(svc.client, "a"))["global"]["impressions"] == 0


async def test_rec_of_another_user_is_refused(svc):
    await add_items(svc.client, ["a"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 1})).json()
    bad = event("click", "u2", "a", rec["rec_id"])
    _error(await send(svc.client, [bad]), 422, "events[0].user_id")


async def test_unknown_rec_id_credits_the_users_current_cluster(svc):
    await add_items(svc.client, ["a"])
    response = await send(svc.client, [event("click", "u", "a", "expired-or-never-logged")])
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "unknown_rec_ids": ["expired-or-never-logged"],
    }
    assert (await arm(svc.client, "a"))["clusters"][0]["clicks"] == 1


async def test_oversize_body_is_413(start):
    running = await start(max_body_bytes=4096)
    big = {"events": [{**GOOD, "event_id": f"e{n}"} for n in range(200)]}
    error = _error(await running.client.post("/v1/feedback", json=big), 413)
    assert error["code"] == "payload_too_large"

    async def chunks():
        for _ in range(10):
            yield b" " * 1000

    streamed = await running.client.post(
        "/v1/feedback", content=chunks(), headers={"content-type": "application/json"}
    )
    _error(streamed, 413)


async def test_unknown_route_and_method_use_the_error_shape(svc):
    assert _error(await svc.client.get("/v1/nope"), 404)["code"] == "not_found"
    assert _error(await svc.client.get("/v1/feedback"), 405)["code"] == "method_not_allowed"


async def test_api_key_guards_writes_and_the_dashboards_reads(start):
    running = await start(api_key="s3cret")
    client = running.client
    item = {"embedding": None}
    assert _error(await client.put("/v1/items/a", json=item), 401)["field"] == "X-API-Key"
    wrong = {"X-API-Key": "s3cres"}
    _error(await client.put("/v1/items/a", json=item, headers=wrong), 401)
    key = {"X-API-Key": "s3cret"}
    assert (await client.put("/v1/items/a", json=item, headers=key)).status_code == 200
    _error(await client.post("/v1/recommend", json={"user_id": "u"}), 401)
    _error(await send(client, [event("impression", "u", "a")]), 401)
    _error(await client.post("/v1/admin/clusters/fit", json={"k": 2}), 401)
    _error(await client.delete("/v1/items/a"), 401)
    assert (await client.get("/v1/items/a")).status_code == 200
    # What was learned, and users' data: the dashboard's sources need the key (issue 16).
    for path in ("/v1/arms/a", "/v1/arms", "/v1/users/u", "/v1/stats", "/v1/overview"):
        assert _error(await client.get(path), 401)["field"] == "X-API-Key"
        assert (await client.get(path, headers=key)).status_code == 200
    assert (await client.get("/dashboard")).status_code == 200
    assert (await send(client, [event("impression", "u", "a")], headers=key)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/recommend", {"user_id": "u", "k": "5"}, "k"),
        ("/v1/recommend", {"user_id": "u", "k": True}, "k"),
        ("/v1/recommend", {"user_id": "u", "k": 5.0}, "k"),
        ("/v1/recommend", {"user_id": "u", "pools": {"p": "1"}}, "pools.p"),
        ("/v1/feedback", {"events": [{**GOOD, "ts": str(int(time.time()))}]}, "events[0].ts"),
        ("/v1/feedback", {"events": [{**GOOD, "ts": True}]}, "events[0].ts"),
        ("/v1/items/bulk", {"items": [{"item_id": "a", "embedding": ["0.5"]}]},
         "items[0].embedding[0]"),
        ("/v1/items/bulk", {"items": [{"item_id": "a", "active": "false"}]}, "items[0].active"),
        ("/v1/items/bulk", {"items": [{"item_id": "a", "active": 0}]}, "items[0].active"),
        ("/v1/admin/clusters/fit", {"k": "2"}, "k"),
    ],
)  # fmt: skip
async def test_numbers_and_booleans_in_bodies_are_not_coerced(svc, path, body, field):
    # "5", true or 5.0 for an integer and "123" for a time are client bugs: say so, as a
    # schema error (not as whatever the coerced value would have run into).
    error = _error(await svc.client.post(path, json=body), 422, field)
    assert error["code"] == "invalid_request"


async def test_json_integers_are_numbers_and_times(svc):
    await add_items(svc.client, ["a"])
    await svc.refresh()
    now = int(time.time())
    assert (await send(svc.client, [{**GOOD, "ts": now}])).status_code == 200
    rec = await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 1})
    assert rec.status_code == 200, rec.text
    item = await svc.client.put("/v1/items/b", json={"embedding": [1, 0], "active": False})
    assert item.json()["embedding"] == [1.0, 0.0]
