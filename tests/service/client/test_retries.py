"""Retries: a Redis outage (503), answers lost after the service acted, requests never sent."""

from __future__ import annotations

import random

import httpx
import pytest

from service.client import (
    NO_RETRY,
    AsyncClient,
    ConnectionFailed,
    Retry,
    Unavailable,
    served_events,
)
from service.client.errors import error_from
from service.client.retry import Resend
from service.config import Settings
from service.embedded import EmbeddedRedis
from service.main import create_app
from tests.service.client.conftest import FAST
from tests.service.client.transports import Flaky
from tests.service.clusters import two_taste_world

pytestmark = pytest.mark.anyio


async def test_feedback_is_resent_through_a_redis_restart(tmp_path):
    redis = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec").start()
    app = create_app(Settings(redis_url=redis.url, snapshot_ms=50, redis_timeout_s=0.5), seed=1)
    restarts = []

    async def restart_after_first_503(response: httpx.Response) -> None:
        if response.status_code == 503 and not restarts:
            restarts.append(response.json()["error"]["code"])
            redis.start()

    transport = Flaky(httpx.ASGITransport(app=app), on_response=restart_after_first_503)
    try:
        async with (
            app.router.lifespan_context(app),
            AsyncClient("http://t", transport=transport, retry=FAST) as client,
        ):
            await client.put_items([{"item_id": "a"}, {"item_id": "b"}])
            rec = await client.recommend("u", k=2)
            redis.stop()
            result = await client.feedback(served_events(rec, clicked=["a"]))
            assert restarts == ["redis_unavailable"]
            assert transport.statuses[-2:] == [503, 200]
            assert (result.accepted, result.duplicates) == (3, 0)
            arm = await client.item_arms("a")
            assert (arm.global_.impressions, arm.global_.clicks) == (1, 1)
    finally:
        redis.stop()


async def test_unavailable_is_raised_once_the_tries_run_out(tmp_path):
    redis = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec").start()
    app = create_app(Settings(redis_url=redis.url, snapshot_ms=50, redis_timeout_s=0.5), seed=1)
    transport = Flaky(httpx.ASGITransport(app=app))
    retry = Retry(attempts=3, backoff_s=0.01)
    try:
        async with (
            app.router.lifespan_context(app),
            AsyncClient("http://t", transport=transport, retry=retry) as client,
        ):
            await client.put_item("a")
            redis.stop()
            with pytest.raises(Unavailable) as down:
                await client.feedback(
                    [{"event_id": "e", "type": "click", "user_id": "u", "item_id": "a"}]
                )
            assert (down.value.status, down.value.code) == (503, "redis_unavailable")
            assert transport.statuses == [200, 503, 503, 503]
    finally:
        redis.stop()


async def test_a_lost_answer_is_resent_and_counted_once(svc):
    await svc.client.put("/v1/items/a", json={})
    transport = Flaky(httpx.ASGITransport(app=svc.app), lost=[httpx.ReadTimeout("lost")])
    events = [
        {"event_id": f"e{n}", "type": "impression", "user_id": "u", "item_id": "a"}
        for n in range(3)
    ]
    async with AsyncClient("http://t", transport=transport, retry=FAST) as client:
        result = await client.feedback(events)
        # The first send was applied; its resend finds every event already counted.
        assert (result.accepted, result.duplicates) == (0, 3)
        assert len(transport.requests) == 2
        assert (await client.item_arms("a")).global_.impressions == 3


async def test_a_fit_is_resent_only_when_it_never_left(svc):
    await two_taste_world(svc)
    unsent = Flaky(httpx.ASGITransport(app=svc.app), unsent=[httpx.ConnectError("refused")])
    async with AsyncClient("http://t", transport=unsent, retry=FAST) as client:
        assert (await client.fit_clusters(k=2, seed=0)).gen == 1
    assert len(unsent.requests) == 2

    lost = Flaky(httpx.ASGITransport(app=svc.app), lost=[httpx.ReadTimeout("lost")])
    async with AsyncClient("http://t", transport=lost, retry=FAST) as client:
        with pytest.raises(ConnectionFailed) as timeout:
            await client.fit_clusters(k=2, seed=0)
        assert (timeout.value.status, timeout.value.code) == (None, "connection_failed")
        assert "ReadTimeout" in timeout.value.message
        # Fitted once: a resend would have made generation 3.
        assert (await client.overview()).clusters.gen == 2
    assert len(lost.bodies("/v1/admin/clusters/fit")) == 1


async def test_no_retry_gives_up_at_once(svc):
    transport = Flaky(httpx.ASGITransport(app=svc.app), unsent=[httpx.ConnectError("refused")])
    async with AsyncClient("http://t", transport=transport, retry=NO_RETRY) as client:
        with pytest.raises(ConnectionFailed):
            await client.stats()
    assert len(transport.requests) == 1


def test_backoff_doubles_up_to_its_cap_and_honours_retry_after():
    retry = Retry(attempts=5, backoff_s=0.1, max_backoff_s=0.3, jitter=False)
    answer = httpx.Response(503)
    waits = [retry.delay_after_answer(Resend.ANY, tries, answer) for tries in range(1, 6)]
    assert waits == [0.1, 0.2, 0.3, 0.3, None]
    later = httpx.Response(503, headers={"Retry-After": "0.25"})
    assert retry.delay_after_answer(Resend.ANY, 1, later) == 0.25
    assert retry.delay_after_answer(Resend.ANY, 1, httpx.Response(500)) is None
    assert retry.delay_after_answer(Resend.UNSENT, 1, answer) is None
    jittered = Retry(backoff_s=0.1, rng=random.Random(0))
    assert all(0 <= jittered.delay_after_answer(Resend.ANY, 2, answer) <= 0.2 for _ in range(50))
    with pytest.raises(ValueError, match="attempts"):
        Retry(attempts=0)


def test_an_answer_not_in_the_error_shape_is_still_an_exception():
    proxy = error_from(httpx.Response(502, text="<html>bad gateway</html>"))
    assert isinstance(proxy, Unavailable)
    assert (proxy.status, proxy.code, proxy.field) == (502, "http_502", None)
    assert "bad gateway" in proxy.message
