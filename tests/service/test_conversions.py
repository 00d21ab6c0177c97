"""Conversions: counted per arm, attributed to the click they follow, optionally optimised."""

from __future__ import annotations

import pytest

from tests.service.helpers import add_items, arm, event, exported_lists, send

pytestmark = pytest.mark.anyio


async def test_a_conversion_counts_on_its_own_and_changes_nothing_else(svc):
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 2})).json()
    batch = [event("impression", "u", "a", rec["rec_id"]), event("click", "u", "a", rec["rec_id"])]
    await send(svc.client, batch)
    conversion = [event("conversion", "u", "a", rec["rec_id"])]
    assert (await send(svc.client, conversion)).json() == {
        "accepted": 1,
        "duplicates": 0,
        "unknown_rec_ids": [],
    }
    assert (await send(svc.client, conversion)).json() == {
        "accepted": 0,
        "duplicates": 1,
        "unknown_rec_ids": [],
    }
    a = await arm(svc.client, "a")
    assert (a["global"]["impressions"], a["global"]["clicks"]) == (1, 1)
    assert a["global"]["conversions"] == 1 and a["clusters"][0]["conversions"] == 1
    assert 0 < a["global"]["conversion_rate"] <= 1
    user = (await svc.client.get("/v1/users/u")).json()
    assert user["recent_clicks"] == ["a"]  # the conversion is not another click
    (line,) = exported_lists((await svc.client.get("/v1/admin/logs/export")).text)
    flags = {i["item_id"]: (i["click"], i["conversion"]) for i in line["items"]}
    assert flags["a"] == (True, True) and flags["b"] == (False, False)


async def test_a_conversion_without_rec_id_is_attributed_to_the_users_last_click(svc):
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 2})).json()
    await send(svc.client, [event("click", "u", "b", rec["rec_id"])])
    # Days later the purchase arrives without the rec_id: it is joined to the clicked list.
    await send(svc.client, [event("conversion", "u", "b")])
    (line,) = exported_lists((await svc.client.get("/v1/admin/logs/export")).text)
    assert {i["item_id"]: i["conversion"] for i in line["items"]}["b"] is True
    assert (await arm(svc.client, "b"))["global"]["conversions"] == 1


async def test_an_unattributed_conversion_still_counts(svc):
    await add_items(svc.client, ["a"])
    assert (await send(svc.client, [event("conversion", "u", "a")])).json()["accepted"] == 1
    assert (await arm(svc.client, "a"))["global"]["conversions"] == 1


async def _money_world(running) -> None:
    """'clicky' gets 30% CTR but 1% of clicks convert; 'payer' 15% CTR and 40% convert."""
    await add_items(running.client, ["clicky", "payer"])
    events = []
    for item, clicks, conversions in (("clicky", 300, 3), ("payer", 150, 60)):
        events += [event("impression", "crowd", item) for _ in range(1000)]
        events += [event("click", f"c{n}", item) for n in range(clicks)]
        events += [event("conversion", f"c{n}", item) for n in range(conversions)]
    for start in range(0, len(events), 1000):
        assert (await send(running.client, events[start : start + 1000])).status_code == 200
    await running.refresh()


async def _share_first(running, item: str, n: int = 40) -> float:
    firsts = []
    for m in range(n):
        body = {"user_id": f"v{m}", "k": 1}
        firsts.append((await running.client.post("/v1/recommend", json=body)).json())
    return sum(f["items"][0]["item_id"] == item for f in firsts) / n


async def test_clicks_are_optimised_by_default(start):
    running = await start()
    await _money_world(running)
    # Beta(~300, ~700) against Beta(~150, ~850): clicky wins essentially every draw.
    assert await _share_first(running, "clicky") == 1.0


async def test_conversion_weight_blends_conversions_into_the_score(start):
    running = await start(conversion_weight=1.0)
    await _money_world(running)
    # Expected conversions per impression: clicky 0.30 x ~0.01, payer 0.15 x ~0.40.
    assert await _share_first(running, "payer") == 1.0
