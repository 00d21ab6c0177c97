"""Feedback batchers: flush on size, on the timer and on close; safe across threads and tasks."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from service.client import Client, ConnectionFailed, FeedbackEvent, Retry
from tests.service.client.conftest import FAST
from tests.service.client.transports import Flaky, FlakySync


def _events(user: str, n: int, item: str = "a") -> list[FeedbackEvent]:
    return [
        FeedbackEvent(event_id=f"{user}-{i}", type="impression", user_id=user, item_id=item)
        for i in range(n)
    ]


def _wait(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_size_and_close_flush_in_batches_of_max_events(served):
    server = served()
    with Client(server.url, retry=FAST) as client:
        client.put_item("a")
        # A timer far off: only size and close send.
        with client.batcher(max_events=10, interval_s=3600) as batcher:
            for event in _events("u", 25):
                batcher.add(event)
            assert (batcher.batches, batcher.accepted, batcher.pending) == (2, 20, 5)
        assert (batcher.batches, batcher.accepted, batcher.pending) == (3, 25, 0)
        assert client.item_arms("a").global_.impressions == 25
        with pytest.raises(RuntimeError, match="closed"):
            batcher.add(_events("late", 1)[0])


def test_the_timer_flushes_what_waits(served):
    server = served()
    with Client(server.url, retry=FAST) as client:
        client.put_item("a")
        with client.batcher(max_events=1000, interval_s=0.05) as batcher:
            batcher.extend(_events("u", 3))
            _wait(lambda: batcher.accepted == 3)
            assert batcher.pending == 0
        assert batcher.batches == 1


def test_threads_adding_at_once_lose_and_double_nothing(served):
    server = served()
    with Client(server.url, retry=FAST) as client:
        client.put_item("a")
        with client.batcher(max_events=100, interval_s=0.02) as batcher:
            threads = [
                threading.Thread(target=lambda u=f"t{n}": [batcher.add(e) for e in _events(u, 250)])
                for n in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert (batcher.accepted, batcher.duplicates, batcher.pending) == (2000, 0, 0)
        assert client.item_arms("a").global_.impressions == 2000


def test_a_failed_flush_keeps_its_events_for_the_next(served):
    server = served()
    refused = [httpx.ConnectError("refused") for _ in range(2)]
    transport = FlakySync(unsent=refused)
    with Client(server.url, transport=transport, retry=Retry(attempts=2, backoff_s=0.01)) as client:
        batcher = client.batcher(max_events=1000, interval_s=3600)
        batcher.extend(_events("u", 4))
        with pytest.raises(ConnectionFailed):
            batcher.flush()  # both tries refused: the events stay queued
        assert batcher.pending == 4
        transport.unsent.append(httpx.ConnectError("refused"))
        client.put_item("a")  # its first try is refused, its second goes through
        batcher.close()
        assert (batcher.accepted, batcher.pending) == (4, 0)
        assert client.item_arms("a").global_.impressions == 4


@pytest.mark.anyio
async def test_async_batcher_flushes_on_size_timer_and_close_across_tasks(svc, make_async):
    await svc.client.put("/v1/items/a", json={})
    transport = Flaky(httpx.ASGITransport(app=svc.app))
    async with make_async(transport) as client:
        async with client.batcher(max_events=50, interval_s=3600) as batcher:

            async def add(user: str) -> None:
                for event in _events(user, 30):
                    await batcher.add(event)
                    await asyncio.sleep(0)

            await asyncio.gather(*(add(f"task{n}") for n in range(10)))
            assert batcher.accepted + batcher.pending == 300 and batcher.pending < 50
        assert (batcher.accepted, batcher.duplicates, batcher.pending) == (300, 0, 0)
        sizes = [len(body["events"]) for body in transport.bodies("/v1/feedback")]
        assert sizes and all(size <= 50 for size in sizes) and sum(sizes) == 300

        timed = client.batcher(max_events=1000, interval_s=0.02)
        await timed.extend(_events("timer", 3))
        for _ in range(500):
            if timed.accepted == 3:
                break
            await asyncio.sleep(0.01)
        assert (timed.accepted, timed.pending) == (3, 0)
        await timed.aclose()
        assert (await client.item_arms("a")).global_.impressions == 303


def test_batcher_bounds_are_checked(served):
    with Client("http://127.0.0.1:9", retry=FAST) as client:
        with pytest.raises(ValueError, match="max_events"):
            client.batcher(max_events=1001)
        with pytest.raises(ValueError, match="interval_s"):
            client.batcher(interval_s=0)
