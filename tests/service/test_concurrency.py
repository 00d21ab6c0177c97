"""Concurrent clients with overlapping batches end with exact counts."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.service.helpers import add_items, arm, send

pytestmark = pytest.mark.anyio


async def test_eight_clients_with_overlapping_batches_count_each_event_once(svc):
    items = [f"i{n}" for n in range(5)]
    await add_items(svc.client, items)
    rng = random.Random(7)
    events = [
        {
            "event_id": f"ev{n}",
            "type": "click" if n % 4 == 0 else "impression",
            "user_id": f"u{n % 13}",
            "item_id": items[n % 5],
        }
        for n in range(2000)
    ]
    # Each client sends overlapping windows, in its own order, and retries one batch.
    batches = []
    for client_no in range(8):
        starts = list(range(0, 2000, 150))
        rng.shuffle(starts)
        batches.append([events[s : s + 300] for s in starts] + [events[client_no * 100 :][:100]])

    async def client(own: list[list[dict]]) -> int:
        accepted = 0
        for batch in own:
            response = await send(svc.client, batch)
            assert response.status_code == 200, response.text
            accepted += response.json()["accepted"]
        return accepted

    accepted = await asyncio.gather(*(client(b) for b in batches))
    assert sum(accepted) == 2000
    for n, item in enumerate(items):
        mine = [e for e in events if e["item_id"] == item]
        a = await arm(svc.client, item)
        assert a["global"]["impressions"] == sum(e["type"] == "impression" for e in mine), n
        assert a["global"]["clicks"] == sum(e["type"] == "click" for e in mine), n
        assert a["clusters"][0]["impressions"] == a["global"]["impressions"]
