"""Redis goes away and comes back: recommend degrades, writes refuse, nothing half-written."""

from __future__ import annotations

from importlib import resources

import httpx
import pytest
import redis.asyncio as redis

from service.config import Settings
from service.embedded import EmbeddedRedis
from service.main import create_app
from tests.service.helpers import add_items, arm, event, send

pytestmark = pytest.mark.anyio


async def test_redis_down_then_back(tmp_path):
    server = EmbeddedRedis(tmp_path / "outage", appendfsync="everysec").start()
    settings = Settings(redis_url=server.url, snapshot_ms=50, redis_timeout_s=0.5)
    app = create_app(settings, seed=1)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client,
        ):
            await add_items(client, ["a", "b", "c"])
            await send(client, [event("click", "u", "a")])
            await app.state.engine.refresh()

            server.stop()
            rec = await client.post("/v1/recommend", json={"user_id": "u", "k": 2})
            assert rec.status_code == 200, rec.text
            assert rec.json()["stale"] is True and len(rec.json()["items"]) == 2
            down = await send(client, [event("impression", "u", "b")])
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "redis_unavailable"
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.put("/v1/items/d", json={})).status_code == 503
            assert (await client.get("/v1/admin/logs/export")).status_code == 503

            server.start()
            assert (await client.get("/readyz")).status_code == 200
            # Redis restarted with an empty script cache: feedback reloads its scripts.
            again = await send(client, [event("impression", "u", "b")])
            assert again.json() == {"accepted": 1, "duplicates": 0, "unknown_rec_ids": []}
            await app.state.engine.refresh()
            rec = await client.post("/v1/recommend", json={"user_id": "u", "k": 2})
            assert rec.json()["stale"] is False
            # Nothing was lost across the restart, nothing from the refused batch landed.
            assert (await arm(client, "a"))["global"]["clicks"] == 1
            assert (await arm(client, "b"))["global"]["impressions"] == 1
    finally:
        server.stop()


async def test_a_batch_run_while_redis_reloads_its_scripts_is_reported_accepted(svc, redis_url):
    await add_items(svc.client, ["a"])
    # As after a restart while another worker reloads the scripts: the count script is
    # cached again, the user script not yet: the first runs at once, the second after a reload.
    client = redis.Redis.from_url(redis_url)
    try:
        await client.script_flush()
        source = resources.files("service.store") / "scripts" / "record_counts.lua"
        await client.script_load(source.read_text(encoding="utf-8"))
    finally:
        await client.aclose()
    batch = [event("impression", "u", "a"), event("click", "u", "a")]
    first = await send(svc.client, batch)
    assert first.json() == {"accepted": 2, "duplicates": 0, "unknown_rec_ids": []}
    counts = (await arm(svc.client, "a"))["global"]
    assert (counts["impressions"], counts["clicks"]) == (1, 1)
    assert (await svc.client.get("/v1/users/u")).json()["recent_clicks"] == ["a"]
    again = await send(svc.client, batch)
    assert again.json() == {"accepted": 0, "duplicates": 2, "unknown_rec_ids": []}
