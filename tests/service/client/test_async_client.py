"""AsyncClient against the app in-process: typed results of every call, errors as exceptions."""

from __future__ import annotations

import httpx
import pytest

from service.client import (
    AsyncClient,
    BanditrecError,
    FeedbackEvent,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    served_events,
)
from service.schemas import (
    ArmList,
    FitResult,
    ItemArms,
    ItemOut,
    RecommendResponse,
    UserOut,
)
from service.stats_schemas import Overview, StatsOut
from tests.service.client.transports import Flaky
from tests.service.clusters import two_taste_world

pytestmark = pytest.mark.anyio


async def test_every_call_returns_its_typed_result(svc, make_async):
    async with make_async() as client:
        item = await client.put_item("a", embedding=[1.0, 0.0], tags=["drama"], pools=["new"])
        assert isinstance(item, ItemOut) and item.tags == ["drama"] and item.pools == ["new"]
        bulk = await client.put_items(
            [{"item_id": "b", "embedding": [0.0, 1.0]}, {"item_id": "c", "embedding": [1, 1]}]
        )
        assert (bulk.upserted, bulk.dim) == (2, 2)
        assert (await client.get_item("b")).embedding == [0.0, 1.0]

        rec = await client.recommend("u1", k=2, exclude=["c"])
        assert isinstance(rec, RecommendResponse) and len(rec.items) == 2
        assert {i.item_id for i in rec.items} == {"a", "b"}
        related = await client.recommend("u1", k=1, surface="related", item_id="a")
        assert related.items[0].item_id == "c"  # the closest embedding to a's

        events = served_events(rec, clicked=[rec.items[0].item_id])
        assert [e.type for e in events] == ["impression", "impression", "click"]
        result = await client.feedback(events)
        assert (result.accepted, result.duplicates, result.unknown_rec_ids) == (3, 0, [])
        assert (await client.feedback(events)).duplicates == 3  # the same ids count once

        arms = await client.item_arms(rec.items[0].item_id)
        assert isinstance(arms, ItemArms) and arms.global_.clicks == 1
        page = await client.arms(limit=2)
        assert isinstance(page, ArmList) and page.arms[0].item_id == rec.items[0].item_id
        user = await client.user("u1")
        assert isinstance(user, UserOut) and user.recent_clicks == [rec.items[0].item_id]
        stats = await client.stats()
        assert isinstance(stats, StatsOut) and stats.policies["bandit"].clicks == 1
        await client.reset_stats()
        assert (await client.stats()).policies == {}
        await svc.refresh()
        overview = await client.overview()
        assert isinstance(overview, Overview) and overview.catalog.items == 3

        await client.delete_item("c")
        with pytest.raises(NotFound):
            await client.get_item("c")


async def test_fit_clusters_and_the_cluster_arms(svc, make_async):
    await two_taste_world(svc)
    async with make_async() as client:
        fit = await client.fit_clusters(k=2, seed=0)
        assert isinstance(fit, FitResult) and (fit.gen, fit.k) == (1, 2)
        assert (await client.arms(cluster=1, limit=3)).cluster == 1


async def test_feedback_over_1000_events_goes_in_requests_of_1000(svc, make_async):
    await svc.client.put("/v1/items/a", json={})
    events = [
        FeedbackEvent(event_id=f"e{n}", type="impression", user_id=f"u{n % 7}", item_id="a")
        for n in range(2500)
    ]
    transport = Flaky(httpx.ASGITransport(app=svc.app))
    async with make_async(transport) as client:
        result = await client.feedback(events)
    assert [len(body["events"]) for body in transport.bodies("/v1/feedback")] == [1000, 1000, 500]
    assert (result.accepted, result.duplicates) == (2500, 0)


async def test_errors_carry_the_apis_status_code_and_field(svc, make_async):
    await svc.client.put("/v1/items/a", json={})
    async with make_async() as client:
        with pytest.raises(InvalidRequest) as unknown:
            await client.feedback(
                [{"event_id": "e1", "type": "click", "user_id": "u", "item_id": "zz"}]
            )
        error = unknown.value
        assert (error.status, error.code, error.field) == (422, "unknown_item", "events[0].item_id")
        assert "zz" in error.message and isinstance(error, BanditrecError)

        with pytest.raises(InvalidRequest) as bounds:
            await client.recommend("u", k=0)
        assert (bounds.value.code, bounds.value.field) == ("invalid_request", "k")

        with pytest.raises(NotFound) as missing:
            await client.item_arms("nothing")
        assert (missing.value.status, missing.value.code, missing.value.field) == (
            404, "not_found", "item_id",
        )  # fmt: skip

        with pytest.raises(InvalidRequest) as cluster:
            await client.arms(cluster=5)
        assert (cluster.value.code, cluster.value.field) == ("unknown_cluster", "cluster")


async def test_key_and_body_size_errors(start):
    running = await start(api_key="s3cret", max_body_bytes=4096)
    transport = httpx.ASGITransport(app=running.app)
    async with AsyncClient("http://test", transport=transport) as anonymous:
        with pytest.raises(Unauthorized) as refused:
            await anonymous.stats()
        assert (refused.value.status, refused.value.field) == (401, "X-API-Key")
    async with AsyncClient("http://test", api_key="s3cret", transport=transport) as client:
        assert (await client.stats()).policies == {}
        with pytest.raises(PayloadTooLarge) as large:
            await client.put_items(
                [{"item_id": f"i{n}", "embedding": [0.5] * 50} for n in range(20)]
            )
        assert (large.value.status, large.value.code) == (413, "payload_too_large")
