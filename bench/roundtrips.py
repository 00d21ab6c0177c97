"""Benchmark 5: Redis commands per recommend and per feedback batch, 100 vs 100k items."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from bench import machine, server
from service.store import Store

SIZES = (100, 100_000)
CALLS = 20
DIM = 16


async def _bulk_items(url: str, n: int, dim: int, seed: int = 5) -> None:
    """Write n items straight into Redis through the service's Store, 1000 per script call."""
    rng = np.random.default_rng(seed)
    store = Store(url)
    try:
        now = time.time()
        meta = {"tags": [], "pools": [], "active": True, "updated": now}
        for start in range(0, n, 1000):
            chunk = range(start, min(n, start + 1000))
            vectors = rng.standard_normal((len(chunk), dim))
            await store.upsert_items(
                [(f"i{i}", meta, vectors[j].tolist()) for j, i in enumerate(chunk)]
            )
    finally:
        await store.close()


def add_items(srv: server.Server, n: int, dim: int = DIM) -> None:
    """Create n items (Store for the bulk, then one PUT so the worker refreshes its snapshot)."""
    asyncio.run(_bulk_items(srv.redis_url, n - 1, dim))
    with httpx.Client(base_url=srv.base_url, timeout=120) as http:
        response = http.put(f"/v1/items/i{n - 1}", json={"embedding": [0.5] * dim})
        response.raise_for_status()


def commandstats(client: redis.Redis, field: str = "calls") -> dict[str, int]:
    """Return calls (or usec, Redis CPU) per command so far, without INFO itself."""
    stats = client.info("commandstats")
    return {
        k.removeprefix("cmdstat_"): int(v[field]) for k, v in stats.items() if k != "cmdstat_info"
    }


def _delta(before: dict[str, int], after: dict[str, int], calls: int) -> dict[str, float]:
    return {
        k: round((after[k] - before.get(k, 0)) / calls, 2)
        for k in sorted(after)
        if after[k] != before.get(k, 0)
    }


def measure(srv: server.Server, n_items: int, calls: int = CALLS) -> dict[str, Any]:
    """Return commands per recommend and per feedback batch (10 impressions + 1 click)."""
    client = redis.Redis.from_url(srv.redis_url)
    try:
        with httpx.Client(base_url=srv.base_url, timeout=60) as http:
            # Give the user a history and some unclicked impressions first.
            warm = [
                {"event_id": f"w{n}", "type": "impression", "user_id": "u1", "item_id": f"i{n}"}
                for n in range(min(20, n_items))
            ] + [{"event_id": "wc", "type": "click", "user_id": "u1", "item_id": "i0"}]
            http.post("/v1/feedback", json={"events": warm}).raise_for_status()
            before = commandstats(client)
            served = []
            for _ in range(calls):
                response = http.post("/v1/recommend", json={"user_id": "u1", "k": 10})
                response.raise_for_status()
                served.append(response.json())
            middle = commandstats(client)
            usec_before = commandstats(client, "usec")
            for n, rec in enumerate(served):
                shown = [i["item_id"] for i in rec["items"]]
                events = [
                    {"event_id": f"f{n}-{i}", "type": "impression", "user_id": "u1",
                     "item_id": item, "rec_id": rec["rec_id"]}
                    for i, item in enumerate(shown)
                ] + [{"event_id": f"f{n}-c", "type": "click", "user_id": "u1",
                      "item_id": shown[0], "rec_id": rec["rec_id"]}]  # fmt: skip
                http.post("/v1/feedback", json={"events": events}).raise_for_status()
            after = commandstats(client)
            usec_after = commandstats(client, "usec")
    finally:
        client.close()
    per_recommend = _delta(before, middle, calls)
    per_feedback = _delta(middle, after, calls)
    return {
        "n_items": n_items,
        "per_recommend": per_recommend,
        "per_recommend_total": round(sum(per_recommend.values()), 2),
        "per_feedback_batch": per_feedback,
        "per_feedback_batch_total": round(sum(per_feedback.values()), 2),
        # Redis CPU per feedback batch by command; a script's usec includes its commands'.
        "feedback_batch_usec": _delta(usec_before, usec_after, calls),
    }


def run(work: Path, sizes: tuple[int, ...] = SIZES, calls: int = CALLS) -> dict[str, Any]:
    """Count commands at each catalog size on a fresh server; say whether the counts grew."""
    rows = []
    load_before = machine.load()
    for n in sizes:
        # A long snapshot period keeps the background refresh out of the counts.
        with server.banditrec(
            work / f"roundtrips-{n}",
            appendfsync="everysec",
            snapshot_ms=600_000,
            extra_env={"BANDITREC_STALE_AFTER_S": "700"},
        ) as srv:
            add_items(srv, n)
            rows.append(measure(srv, n, calls))
    # "Must not grow": the largest catalog needs no more commands per call than the
    # smallest. Not exact equality: feedback naming a rec_id also bumps a /v1/stats
    # agreement counter when the item was in the baseline's list too, which depends on
    # the data (this made 100 items 0.1 command per batch dearer than 100k in one run).
    smallest, largest = rows[0], rows[-1]
    grew = [
        part
        for part in ("per_recommend_total", "per_feedback_batch_total")
        if largest[part] > smallest[part]
    ]
    return {
        "what": (
            f"INFO commandstats deltas over {calls} recommends (k=10, one user with 1 click and "
            "~20 unclicked impressions) and then over 20 feedback batches (10 impressions + 1 "
            "click naming the rec_id), averaged per call; commands run inside Lua scripts "
            "count too (evalsha is the round trip, hset/hincrby... inside it are not). "
            "Snapshot refresh disabled during the count (BANDITREC_SNAPSHOT_MS=600000)."
        ),
        "rows": rows,
        "target": "counts equal at every catalog size",
        "met": not grew,
        "load_before": load_before,
        "load_after": machine.load(),
    }
