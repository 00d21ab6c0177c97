"""Served lists written after the response: feedback never misses one, shutdown writes them."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from service.engine.pending_lists import PendingLists
from service.store import LoggedWrite
from service.store.codecs import ServedList
from tests.service.helpers import add_items

pytestmark = pytest.mark.anyio


async def _stored(redis_url: str, rec_id: str) -> bytes | None:
    client = redis.Redis.from_url(redis_url)
    try:
        raw: bytes | None = await client.get(f"br:rec:{{{rec_id}}}")
        return raw
    finally:
        await client.aclose()


def _served(user_id: str, items: list[str]) -> ServedList:
    return ServedList(
        user_id=user_id, gen=0, cluster=0, membership="0:1", ts=1.0, surface="home",
        item_id=None, pools=None, k=len(items), n_candidates=len(items), items=items,
        scores=[0.5] * len(items), propensities=[1.0] * len(items), policy="bandit", shadows={},
    )  # fmt: skip


async def test_feedback_in_the_same_worker_finds_a_list_redis_does_not_have_yet(svc, redis_url):
    await add_items(svc.client, ["a", "b", "c"])
    await svc.refresh()
    engine = svc.app.state.engine
    # Hold the list back from the writer: as if Redis had not answered the write yet.
    waiting = PendingLists(engine.ctx)
    write = LoggedWrite("r1", _served("u", ["a", "b"]), None)
    waiting._waiting[write.rec_id] = write
    engine.feedback.pending = waiting
    assert await _stored(redis_url, "r1") is None

    events = [
        {"event_id": "e1", "type": "impression", "user_id": "u", "item_id": "a", "rec_id": "r1"},
        {"event_id": "e2", "type": "click", "user_id": "u", "item_id": "a", "rec_id": "r1"},
    ]
    result = (await svc.client.post("/v1/feedback", json={"events": events})).json()
    assert result == {"accepted": 2, "duplicates": 0, "unknown_rec_ids": []}
    # Checked against the waiting list: an item it did not serve is refused.
    wrong = [{"event_id": "e3", "type": "click", "user_id": "u", "item_id": "c", "rec_id": "r1"}]
    refused = await svc.client.post("/v1/feedback", json={"events": wrong})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "item_not_served"


async def test_feedback_in_another_worker_finds_a_list_served_a_moment_ago(start, redis_url):
    served_by = await start()
    other = await start()
    await add_items(served_by.client, ["a", "b", "c"])
    await served_by.refresh()
    await other.refresh()
    for n in range(20):
        body = (await served_by.client.post("/v1/recommend", json={"user_id": "u", "k": 2})).json()
        item = body["items"][0]["item_id"]
        event = {"event_id": f"e{n}", "type": "click", "user_id": "u", "item_id": item}
        # Sent at once: the serving worker's write may still be on its way.
        result = await other.client.post(
            "/v1/feedback", json={"events": [event | {"rec_id": body["rec_id"]}]}
        )
        assert result.json() == {"accepted": 1, "duplicates": 0, "unknown_rec_ids": []}


async def test_waiting_lists_are_written_and_counted_and_written_at_shutdown(start, redis_url):
    running = await start()
    await add_items(running.client, ["a", "b"])
    await running.refresh()
    engine = running.app.state.engine
    rec_ids = []
    for n in range(5):
        body = (await running.client.post("/v1/recommend", json={"user_id": f"u{n}"})).json()
        rec_ids.append(body["rec_id"])
    await engine.pending_lists.flush()
    assert len(engine.pending_lists) == 0
    assert None not in [await _stored(redis_url, r) for r in rec_ids]
    stats = (await running.client.get("/v1/stats")).json()
    assert stats["policies"]["bandit"]["lists"] == 5

    # Queued but not yet written when the worker stops: the shutdown writes it.
    write = LoggedWrite("last", _served("u", ["a"]), None)
    engine.pending_lists._waiting[write.rec_id] = write
    await engine.pending_lists.close()
    assert await _stored(redis_url, "last") is not None


async def test_logs_export_and_stats_include_this_workers_waiting_lists(svc, monkeypatch):
    # The background writer held back: the lists wait in the worker, not in Redis.
    release = asyncio.Event()
    write_all = PendingLists._write_all

    async def held(self) -> None:
        await release.wait()
        await write_all(self)

    monkeypatch.setattr(PendingLists, "_write_all", held)
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    for n in range(3):
        served = await svc.client.post("/v1/recommend", json={"user_id": f"u{n}", "k": 1})
        assert served.status_code == 200
    assert len(svc.app.state.engine.pending_lists) == 3
    export = await svc.client.get("/v1/admin/logs/export")
    assert export.text.splitlines()[-1] == '{"end":true,"lines":3}'
    stats = (await svc.client.get("/v1/stats")).json()
    assert stats["policies"]["bandit"]["lists"] == 3
    release.set()  # the shutdown waits for the writer
