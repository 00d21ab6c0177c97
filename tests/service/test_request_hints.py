"""Answers that tell the caller what happened: defaults taken, empty lists and typos explained."""

from __future__ import annotations

import pytest

from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, send

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"content": b""},
        {"content": b"", "headers": {"content-type": "application/json"}},
        {"json": {}},
    ],
    ids=["no-body", "empty-bytes", "empty-json-body", "empty-object"],
)
async def test_fit_without_a_body_takes_the_defaults(start, request_body):
    svc = await start()
    # 40 users with embedded clicks; 200 clicks over 20 items cover no k above 8 with 3
    # impressions per cluster arm, so the default chooses 8.
    await two_taste_world(svc)
    response = await svc.client.post("/v1/admin/clusters/fit", **request_body)
    assert response.status_code == 200, response.text
    assert response.json()["k"] == 8


async def test_fit_body_fields_are_still_checked(svc):
    response = await svc.client.post("/v1/admin/clusters/fit", json={"kk": 2})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "kk"


async def test_an_empty_list_says_why(svc):
    empty = await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 3})
    assert empty.status_code == 200
    assert empty.json()["items"] == [] and empty.json()["reason"] == "catalog_empty"

    await add_items(svc.client, ["a", "b"])
    for body in (
        {"user_id": "u", "k": 3, "exclude": ["a", "b"]},
        {"user_id": "u", "k": 3, "candidates": ["a"], "exclude": ["a"]},
    ):
        response = await svc.client.post("/v1/recommend", json=body)
        assert response.status_code == 200
        assert response.json()["items"] == [] and response.json()["reason"] == "no_candidates"

    await svc.client.put("/v1/items/a", json={"active": False})
    await svc.client.put("/v1/items/b", json={"active": False})
    inactive = await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 3})
    assert inactive.json()["reason"] == "no_candidates"

    await svc.client.put("/v1/items/b", json={})
    served = await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 3})
    assert [i["item_id"] for i in served.json()["items"]] == ["b"]
    assert served.json()["reason"] is None


async def test_a_misspelt_field_is_named_first(svc):
    event = {"evnt_id": "e1", "type": "click", "user_id": "u", "item_id": "a"}
    response = await send(svc.client, [event])
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "events[0].evnt_id"
    assert error["message"].startswith("events[0].evnt_id: unknown field (did you mean event_id?)")
    assert "events[0].event_id: Field required" in error["message"]
    assert "more problem" not in error["message"]


async def test_a_misspelt_optional_field_is_named(svc):
    body = {"user_id": "u", "k": 0, "surfce": "related"}
    error = (await svc.client.post("/v1/recommend", json=body)).json()["error"]
    assert error["field"] == "surfce"
    assert (
        error["message"] == "surfce: unknown field; k: Input should be greater than or equal to 1"
    )


async def test_many_problems_are_listed_up_to_a_bound(svc):
    events = [{"event_id": f"e{n}", "type": "purchase", "user_id": "u", "item_id": "a"}
              for n in range(8)]  # fmt: skip
    error = (await send(svc.client, events)).json()["error"]
    assert error["field"] == "events[0].type"
    assert error["message"].count("events[") == 5
    assert error["message"].endswith("(and 3 more problems)")
