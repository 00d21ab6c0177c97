"""Benchmark 3: POST /v1/recommend over real HTTP vs a hello-world app, same uvicorn settings."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench import loadgen, machine, seed, server, wrk

TARGET = 0.5  # recommend must reach >= 50% of hello-world requests/s


def _measure(
    srv: server.Server, label: str, out: Path, users: int, duration_s: float, env: dict[str, str]
) -> dict[str, Any]:
    python_pids, redis_pid = srv.python_pids(), srv.redis_pid()
    cpu_before = server.cpu_seconds(python_pids)
    redis_before = server.cpu_seconds([redis_pid]) if redis_pid else 0.0
    load_before = machine.load()
    result = loadgen.run_locust(
        srv.base_url,
        users=users,
        duration_s=duration_s,
        csv_prefix=out / label,
        env={"BENCH_MODE": "recommend", **env},
    )
    n = max(result["requests"], 1)
    result["server_cpu_ms_per_request"] = round(
        1000 * (server.cpu_seconds(python_pids) - cpu_before) / n, 3
    )
    if redis_pid:
        result["redis_cpu_ms_per_request"] = round(
            1000 * (server.cpu_seconds([redis_pid]) - redis_before) / n, 3
        )
    result["load_before"], result["load_after"] = load_before, machine.load()
    return result


def run(
    work: Path,
    template: Path,
    *,
    n_items: int,
    n_users: int,
    k: int,
    users: int = 32,
    duration_s: float = 15.0,
) -> dict[str, Any]:
    """Load a seeded banditrec and the hello-world app in turn; return both and ratios.

    ``template`` is a data folder seeded by bench.seed.world (copied, never changed).
    """
    env = {"BENCH_USERS": str(n_users), "BENCH_ITEMS": str(n_items)}
    data = seed.copy_data(template, work / "endpoint-data")
    out = work
    runs: dict[str, Any] = {}
    with server.hello_world(work) as hello:
        with server.banditrec(data, appendfsync="always") as srv:
            runs["hello_world"] = _measure(hello, "endpoint-hello", out, users, duration_s, env)
            runs["recommend_always"] = _measure(
                srv, "endpoint-recommend-always", out, users, duration_s, env
            )
        # Same data, reloaded from the AOF, with the faster fsync policy.
        with server.banditrec(data, appendfsync="everysec") as srv:
            runs["recommend_everysec"] = _measure(
                srv, "endpoint-recommend-everysec", out, users, duration_s, env
            )
        # Diagnostic: what the Monte-Carlo propensity logging costs (a setting, no code change).
        with server.banditrec(
            data, appendfsync="everysec", extra_env={"BANDITREC_PROPENSITY_SAMPLES": "0"}
        ) as srv:
            runs["recommend_everysec_no_propensity"] = _measure(
                srv, "endpoint-recommend-everysec-nopropensity", out, users, duration_s, env
            )
        runs["hello_world_again"] = _measure(
            hello, "endpoint-hello-again", out, users, duration_s, env
        )
    wrk_figures = wrk_runs(work, data, n_users=n_users, n_items=n_items, duration_s=duration_s)
    hello_rps = (runs["hello_world"]["rps"] + runs["hello_world_again"]["rps"]) / 2
    ratios = {
        name: round(runs[name]["rps"] / hello_rps, 3) if hello_rps else None
        for name in ("recommend_always", "recommend_everysec", "recommend_everysec_no_propensity")
    }
    return {
        "what": (
            f"POST /v1/recommend (k=10, random user of {n_users} with history, {n_items} items "
            f"with dim-{seed.DIM} embeddings, k={k} clusters fitted) vs bench.hello (POST "
            "/v1/recommend returning a constant) under uvicorn 1 worker, uvloop, httptools, "
            f"log level warning (no access log). Load: locust FastHttpUser, {users} users, no "
            f"think time, {duration_s:.0f} s per run after spawning; locust, uvicorn and "
            "redis-server share the machine's cores. Hello-world RPS = mean of a run before "
            "and a run after the recommend runs. server_cpu_ms_per_request is CPU of the "
            "uvicorn process per request (independent of the load generator). "
            "recommend_everysec_no_propensity is a diagnostic run with "
            "BANDITREC_PROPENSITY_SAMPLES=0 (served lists logged without propensities); the "
            "target applies to the default settings."
        ),
        "runs": runs,
        "hello_world_rps_mean": round(hello_rps, 1),
        "wrk": wrk_figures,
        "ratio_vs_hello_world": ratios,
        "target": {"ratio_min": TARGET},
        "met": {
            name: r is not None and r >= TARGET
            for name, r in ratios.items()
            if name != "recommend_everysec_no_propensity"
        },
    }


def wrk_runs(
    work: Path, data: Path, *, n_users: int, n_items: int, duration_s: float, rounds: int = 2
) -> dict[str, Any] | None:
    """Alternate wrk -t1 -c16 runs of hello-world, recommend and feedback x100; ratios of medians.

    None when wrk is not installed (and cannot be: not root, or no apt-get).
    """
    if wrk.ensure() is None:
        return None
    seconds = max(1, round(duration_s))
    recommend_lua = wrk.script(work, "recommend", users=n_users, items=n_items)
    feedback_lua = wrk.script(work, "feedback", users=n_users, items=n_items, batch=100)
    runs: dict[str, list[dict[str, Any]]] = {"hello": [], "recommend": [], "feedback_x100": []}
    with (
        server.hello_world(work) as hello,
        server.banditrec(data, appendfsync="everysec") as srv,
    ):
        for _ in range(rounds):
            for name, target, path, lua in (
                ("hello", hello, "/v1/recommend", recommend_lua),
                ("recommend", srv, "/v1/recommend", recommend_lua),
                ("feedback_x100", srv, "/v1/feedback", feedback_lua),
            ):
                pids = target.python_pids()
                cpu_before = server.cpu_seconds(pids)
                figures = wrk.run(target.base_url + path, lua, duration_s=seconds)
                # CPU per request does not depend on what else the shared cores run.
                cpu_ms = 1000 * (server.cpu_seconds(pids) - cpu_before)
                figures["server_cpu_ms_per_request"] = round(
                    cpu_ms / max(figures["requests"], 1), 3
                )
                figures["load"] = machine.load()
                runs[name].append(figures)

    def median(name: str, key: str) -> float:
        return float(statistics.median(r.get(key) or 0.0 for r in runs[name]))

    hello_rps = median("hello", "rps")
    events_s = 100 * median("feedback_x100", "rps")
    return {
        "runs": runs,
        "hello_rps": hello_rps,
        "recommend_rps": median("recommend", "rps"),
        "recommend_ratio": round(median("recommend", "rps") / hello_rps, 3) if hello_rps else None,
        "feedback_events_s": events_s,
        "feedback_ratio": round(events_s / hello_rps, 3) if hello_rps else None,
        "cpu_ms_per_request": {name: median(name, "server_cpu_ms_per_request") for name in runs},
        "recommend_p50_ms": median("recommend", "p50_ms"),
        "recommend_p99_ms": median("recommend", "p99_ms"),
    }
