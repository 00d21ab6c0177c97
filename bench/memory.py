"""Benchmark 6: Redis used_memory and worker RSS for 10k items x 8 clusters of arms; Redis
bytes per accepted feedback event, per served list and its outcomes, and of one heavy user."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from bench import machine, roundtrips, server
from service.store import Store
from service.store.keys import Keys

N_ITEMS = 10_000
K = 8
DIM = 64
_SETTLE_S = 1.5  # several snapshot periods (200 ms) for the worker to load what changed


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def _fit(url: str, k: int, dim: int, seed: int) -> int:
    store = Store(url)
    try:
        centers = np.random.default_rng(seed).standard_normal((k, dim))
        model = await store.save_clusters(centers, 1.0, [0] * k)
        return model.gen
    finally:
        await store.close()


def _write_counts(client: redis.Redis, gen: int, n_items: int, k: int, seed: int) -> int:
    """Fill imp/clk hashes of every (cluster, item) and the global row; return arms written.

    Written with HSET on the store's keys (docs/redis-keys.md) rather than through feedback,
    so that dedupe markers do not enter the figure; they are measured separately.
    """
    rng = np.random.default_rng(seed)
    keys = Keys("br")
    arms = 0
    for cluster in [*range(k), None]:
        row_gen = None if cluster is None else gen
        impressions = rng.integers(1, 50_000, n_items)
        clicks = rng.binomial(impressions, 0.05).tolist()
        impressions = impressions.tolist()
        pipe = client.pipeline(transaction=False)
        for start in range(0, n_items, 1000):
            stop = min(n_items, start + 1000)
            ids = [f"i{i}" for i in range(start, stop)]
            imp = dict(zip(ids, impressions[start:stop], strict=True))
            clk = dict(zip(ids, clicks[start:stop], strict=True))
            # One shard's part: a store's memory for counts grows with shards touched, and
            # under steady feedback every shard holds a part of every item (docs/memory.md).
            pipe.hset(keys.arms("imp", row_gen, cluster, shard=0), mapping=imp)
            pipe.hset(keys.arms("clk", row_gen, cluster, shard=0), mapping=clk)
        pipe.execute()
        arms += n_items
    client.incr(keys.arms_version(0))
    return arms


def _worker_pid(srv: server.Server) -> int:
    return srv.python_pids()[-1]


def _key_bytes(client: redis.Redis, key: str) -> int:
    """Return MEMORY USAGE of a key (every element sampled), 0 if it does not exist."""
    return int(client.memory_usage(key, samples=0) or 0)


def _served_lists(http: httpx.Client, lists: int) -> list[dict[str, Any]]:
    """Serve `lists` lists of 10 to 1000 users; return the responses."""
    served = []
    for n in range(lists):
        response = http.post("/v1/recommend", json={"user_id": f"u{n % 1000}", "k": 10})
        response.raise_for_status()
        served.append(response.json())
    return served


def _flag_outcomes(http: httpx.Client, served: list[dict[str, Any]]) -> int:
    """Send an impression of every served item naming its list; return the lists flagged."""
    events = [
        {"event_id": f"o-{body['rec_id']}-{n}", "type": "impression", "user_id": body["user_id"],
         "item_id": item["item_id"], "rec_id": body["rec_id"]}
        for body in served
        for n, item in enumerate(body["items"])
    ]  # fmt: skip
    for start in range(0, len(events), 1000):
        http.post("/v1/feedback", json={"events": events[start : start + 1000]}).raise_for_status()
    return sum(1 for body in served if body["items"])


def _heavy_user(http: httpx.Client, events: int, n_items: int) -> None:
    """One user's `events` events over the catalog: 9 impressions to 1 click."""
    for start in range(0, events, 1000):
        batch = [
            {"event_id": f"h{n}", "type": "click" if n % 10 == 9 else "impression",
             "user_id": "heavy", "item_id": f"i{(n * 7) % n_items}"}
            for n in range(start, min(events, start + 1000))
        ]  # fmt: skip
        http.post("/v1/feedback", json={"events": batch}).raise_for_status()


def run(
    work: Path,
    n_items: int = N_ITEMS,
    k: int = K,
    dim: int = DIM,
    events: int = 10_000,
    settle_s: float = _SETTLE_S,
) -> dict[str, Any]:
    """Return Redis and worker memory after items, after arm counts, and per feedback event.

    Then, in Redis: per served list (`events` / 5 lists of 10), per outcome hash (an
    impression of every item of those lists), and one heavy user's keys after 2 x `events`
    events of that user alone.
    """
    load_before = machine.load()
    with server.banditrec(work / "memory", appendfsync="everysec", snapshot_ms=200) as srv:
        client = redis.Redis.from_url(srv.redis_url)
        try:
            pid = _worker_pid(srv)
            time.sleep(settle_s)
            empty = {"redis": _used_memory(client), **server.rss_bytes(pid)}
            roundtrips.add_items(srv, n_items, dim)
            time.sleep(settle_s)
            with_items = {"redis": _used_memory(client), **server.rss_bytes(pid)}
            gen = asyncio.run(_fit(srv.redis_url, k, dim, seed=2))
            arms = _write_counts(client, gen, n_items, k, seed=3)
            time.sleep(settle_s)
            with_arms = {"redis": _used_memory(client), **server.rss_bytes(pid)}
            with httpx.Client(base_url=srv.base_url, timeout=60) as http:
                for start in range(0, events, 1000):
                    batch = [
                        {"event_id": f"m{n}", "type": "impression", "user_id": f"u{n % 1000}",
                         "item_id": f"i{n % n_items}"}
                        for n in range(start, min(events, start + 1000))
                    ]  # fmt: skip
                    http.post("/v1/feedback", json={"events": batch}).raise_for_status()
            time.sleep(settle_s)
            with_events = {"redis": _used_memory(client), **server.rss_bytes(pid)}
            keys = Keys("br")
            # The change stream holds ~2 minutes of batches: not per event in the long run.
            stream = sum(_key_bytes(client, keys.changes(s)) for s in range(keys.shards))
            lists = max(events // 5, 10)
            with httpx.Client(base_url=srv.base_url, timeout=60) as http:
                before = _used_memory(client)
                served = _served_lists(http, lists)
                after_lists = _used_memory(client)
                flagged = _flag_outcomes(http, served)
                outcome_bytes = [_key_bytes(client, keys.outcomes(b["rec_id"])) for b in served]
                _heavy_user(http, 2 * events, n_items)
            list_bytes = [_key_bytes(client, keys.rec(body["rec_id"])) for body in served]
            heavy = {part: _key_bytes(client, key) for part, key in
                     zip(("state", "seen", "clicks", "events", "lastclick"),
                         keys.user_keys("heavy"), strict=True)}  # fmt: skip
        finally:
            client.close()
    items_redis = with_items["redis"] - empty["redis"]
    arms_redis = with_arms["redis"] - with_items["redis"]
    return {
        "what": (
            f"one banditrec worker; {n_items} items with dim-{dim} embeddings written through "
            f"Store; then imp/clk counts for {k} clusters + the global row of every item "
            "(HSET on the documented keys); then "
            f"{events} impressions over 1000 users through POST /v1/feedback (event ids of "
            f"2-6 characters); then {lists} lists of 10 served to those users, an impression "
            "of every served item naming its list, and one heavy user's "
            f"{2 * events} events (1 click in 10) over the catalog. used_memory from INFO "
            "memory (redis-server built with libc malloc), per key MEMORY USAGE; RSS = VmRSS "
            "of the "
            "uvicorn process after a few snapshot refreshes, VmHWM its peak."
        ),
        "stages": {
            "empty": empty,
            "items": with_items,
            "arms": with_arms,
            "events": with_events,
        },
        "redis_bytes": {
            "items_total": items_redis,
            "per_item": round(items_redis / n_items, 1),
            "arms_total": arms_redis,
            "arms_per_10k_items_x_8_clusters": round(arms_redis * (10_000 / n_items) * (8 / k)),
            "per_arm_counted": round(arms_redis / arms, 1),
            "per_feedback_event": round((with_events["redis"] - with_arms["redis"]) / events, 1),
            "change_stream_in_that": stream,
            "per_served_list": round((after_lists - before) / lists, 1),
            "served_list_key": round(sum(list_bytes) / len(list_bytes), 1),
            "per_outcome_hash": round(sum(outcome_bytes) / max(flagged, 1), 1),
        },
        "heavy_user_bytes": {"after_events": 2 * events, **heavy},
        "worker_rss_bytes": {
            "items_delta": with_items["VmRSS"] - empty["VmRSS"],
            "arms_delta": with_arms["VmRSS"] - with_items["VmRSS"],
            "arms_delta_per_10k_items_x_8_clusters": round(
                (with_arms["VmRSS"] - with_items["VmRSS"]) * (10_000 / n_items) * (8 / k)
            ),
            "total": with_arms["VmRSS"],
            "peak": with_events["VmHWM"],
        },
        "target": None,
        "load_before": load_before,
        "load_after": machine.load(),
    }
