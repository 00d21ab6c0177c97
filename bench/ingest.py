"""Benchmark 4: feedback ingest over HTTP vs a redis-py pipeline of as many HINCRBYs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from bench import loadgen, machine, seed, server

BATCHES = (1, 10, 100, 1000)
TARGET_EVENTS_S = 20_000  # with batches of 100
TARGET_BATCH = 100
_BASELINE_KEY = "bench:hincrby"


def hincrby_baseline(url: str, batch: int, duration_s: float, n_items: int) -> dict[str, Any]:
    """Return HINCRBY/s of one redis-py client sending pipelines of `batch` HINCRBYs."""
    client = redis.Redis.from_url(url)
    try:
        fields = [f"i{n % n_items}" for n in range(batch)]
        done = 0
        start = time.perf_counter()
        deadline = start + duration_s
        while time.perf_counter() < deadline:
            pipe = client.pipeline(transaction=False)
            for field in fields:
                pipe.hincrby(_BASELINE_KEY, field, 1)
            pipe.execute()
            done += batch
        elapsed = time.perf_counter() - start
        client.delete(_BASELINE_KEY)
    finally:
        client.close()
    return {"events": done, "events_per_s": round(done / elapsed, 1)}


def run(
    work: Path,
    template: Path,
    *,
    n_items: int,
    n_users: int,
    batches: tuple[int, ...] = BATCHES,
    users: int = 16,
    duration_s: float = 8.0,
    baseline_s: float = 3.0,
    policies: tuple[str, ...] = ("always", "everysec"),
) -> dict[str, Any]:
    """Load /v1/feedback with batches of each size, per fsync policy; return events/s."""
    data = seed.copy_data(template, work / "ingest-data")
    out = work
    rows = []
    for policy in policies:
        with server.banditrec(data, appendfsync=policy) as srv:
            for batch in batches:
                load_before = machine.load()
                baseline = hincrby_baseline(srv.redis_url, batch, baseline_s, n_items)
                redis_pid = srv.redis_pid()
                python_pids = srv.python_pids()
                cpu = server.cpu_seconds(python_pids)
                redis_cpu = server.cpu_seconds([redis_pid]) if redis_pid else 0.0
                result = loadgen.run_locust(
                    srv.base_url,
                    users=users,
                    duration_s=duration_s,
                    csv_prefix=out / f"ingest-{policy}-x{batch}",
                    env={
                        "BENCH_MODE": "feedback",
                        "BENCH_BATCH": str(batch),
                        "BENCH_USERS": str(n_users),
                        "BENCH_ITEMS": str(n_items),
                    },
                )
                ok_requests = result["requests"] - result["failures"]
                events = ok_requests * batch
                events_s = round(result["rps"] * batch * ok_requests / max(result["requests"], 1))
                rows.append(
                    {
                        "appendfsync": policy,
                        "batch": batch,
                        "events_per_s": events_s,
                        "requests_per_s": result["rps"],
                        "p50_ms": result["p50_ms"],
                        "p95_ms": result["p95_ms"],
                        "p99_ms": result["p99_ms"],
                        "failures": result["failures"],
                        "baseline_hincrby_per_s": baseline["events_per_s"],
                        "ratio_vs_baseline": round(events_s / baseline["events_per_s"], 4),
                        "server_cpu_us_per_event": round(
                            1e6 * (server.cpu_seconds(python_pids) - cpu) / max(events, 1), 1
                        ),
                        "redis_cpu_us_per_event": round(
                            1e6
                            * (server.cpu_seconds([redis_pid]) - redis_cpu if redis_pid else 0.0)
                            / max(events, 1),
                            1,
                        ),
                        "locust_cpu_s": result["locust_cpu_s"],
                        "load_before": load_before,
                        "load_after": machine.load(),
                    }
                )
    at_target = {
        r["appendfsync"]: r["events_per_s"] >= TARGET_EVENTS_S
        for r in rows
        if r["batch"] == TARGET_BATCH
    }
    return {
        "what": (
            "POST /v1/feedback with batches of N events (95% impressions, 5% clicks, random "
            f"user of {n_users} with history and item of {n_items}, no rec_id, unique "
            f"event ids), locust FastHttpUser, {users} users, no think time, {duration_s:.0f} s "
            "per run. Baseline: one redis-py client (hiredis) sending pipelines of N HINCRBYs "
            "to the same embedded redis-server over its unix socket for "
            f"{baseline_s:.0f} s just before. Both fsync policies of the embedded Redis."
        ),
        "rows": rows,
        "target": {"events_per_s_min_at_batch_100": TARGET_EVENTS_S},
        "met": at_target,
    }
