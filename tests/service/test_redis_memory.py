"""/metrics exports Redis memory use and its limit (docs/memory.md, docs/metrics.md)."""

from __future__ import annotations

import re

import pytest
import redis.asyncio as redis

pytestmark = pytest.mark.anyio


def _gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def test_metrics_export_redis_used_memory_and_maxmemory(svc, redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        await client.config_set("maxmemory", str(512 << 20))
        text = (await svc.client.get("/metrics")).text
        used = int((await client.info("memory"))["used_memory"])
    finally:
        await client.config_set("maxmemory", "0")
        await client.aclose()
    assert _gauge(text, "banditrec_redis_maxmemory_bytes") == 512 << 20
    assert 0 < _gauge(text, "banditrec_redis_used_memory_bytes") <= 2 * used
