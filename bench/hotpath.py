"""Issue 14's figures with wrk: recommend and feedback against hello-world, Redis CPU per
event, recommend p99 at half its peak, and two workers against one.

`python -m bench.hotpath --items 1000 --users 2000` seeds a world (or reuses `--template`),
then alternates wrk runs; `--tree REV` serves a `git archive` of a revision (a before/after
pair in one run: `--tree main --tree HEAD`, alternated). Results go to stdout and `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from bench import machine, seed, server, wrk

# Per connection, wait a random time (exponential, mean delay_ms) before each request, so
# the 16 connections do not fire in bursts: the offered rate is about 16 / (delay + latency),
# which `half_peak` tunes to half the peak rate.
_PACED_LUA = (
    wrk.RECOMMEND_LUA
    + """delay = function()
  return math.floor(-math.log(1 - math.random()) * %(delay_ms)d)
end
"""
)


def _commandstats(url: str) -> dict[str, dict[str, float]]:
    client = redis.Redis.from_url(url)
    try:
        stats: dict[str, dict[str, float]] = client.info("commandstats")  # type: ignore[assignment]
        return stats
    finally:
        client.close()


def _command_delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], events: int
) -> dict[str, dict[str, float]]:
    """Return calls and µs of Redis time per event for each command that ran."""
    out = {}
    for name, row in after.items():
        calls = row["calls"] - before.get(name, {}).get("calls", 0)
        usec = row["usec"] - before.get(name, {}).get("usec", 0)
        if calls:
            out[name.removeprefix("cmdstat_")] = {
                "calls_per_event": round(calls / events, 3),
                "usec_per_event": round(usec / events, 3),
            }
    return out


def measured(
    target: server.Server,
    url_path: str,
    lua: Path,
    duration_s: int,
    *,
    per: int = 1,
    redis_of: server.Server | None = None,
) -> dict[str, Any]:
    """Run wrk once; add server and Redis CPU per request (and per event when per > 1).

    `redis_of` is the server whose embedded Redis `target` uses, when not its own.
    """
    pids = target.python_pids()
    store = redis_of or target
    redis_pid = store.redis_pid()
    cpu_before = server.cpu_seconds(pids)
    redis_before = server.cpu_seconds([redis_pid]) if redis_pid else 0.0
    stats_before = _commandstats(store.redis_url) if redis_pid else {}
    figures = wrk.run(target.base_url + url_path, lua, duration_s=duration_s)
    n = max(figures["requests"], 1)
    figures["server_cpu_ms_per_request"] = round(
        1000 * (server.cpu_seconds(pids) - cpu_before) / n, 3
    )
    if redis_pid:
        redis_s = server.cpu_seconds([redis_pid]) - redis_before
        figures["redis_cpu_us_per_unit"] = round(1e6 * redis_s / (n * per), 2)
        figures["commands"] = _command_delta(stats_before, _commandstats(store.redis_url), n * per)
    figures["load"] = machine.load()
    return figures


@contextlib.contextmanager
def _tree(rev: str | None, work: Path) -> Iterator[str]:
    """Serve a revision's exported tree (or the working tree) inside the block."""
    if rev is None:
        os.environ.pop("BENCH_SERVICE_ROOT", None)
        yield "working tree"
        return
    root = work / f"tree-{server.resolve_rev(rev)}"
    if not root.exists():
        root = server.export_tree(rev, work)
    os.environ["BENCH_SERVICE_ROOT"] = str(root)
    try:
        yield f"git archive {server.resolve_rev(rev)}"
    finally:
        os.environ.pop("BENCH_SERVICE_ROOT", None)


def compare(
    work: Path,
    template: Path,
    trees: list[str | None],
    *,
    users: int,
    items: int,
    rounds: int,
    duration_s: int,
    feedback: bool = True,
    recommend: bool = True,
) -> dict[str, Any]:
    """Alternate hello-world, the floor and each tree's recommend (and feedback x100);
    medians and ratios. The floor (bench/floor.py) reads a copy of the same seeded Redis."""
    recommend_lua = wrk.script(work, "recommend", users=users, items=items)
    feedback_lua = wrk.script(work, "feedback", users=users, items=items, batch=100)
    runs: dict[str, list[dict[str, Any]]] = {"hello": []}
    with server.hello_world(work) as hello:
        for r in range(rounds):
            runs["hello"].append(measured(hello, "/v1/recommend", recommend_lua, duration_s))
            if recommend:
                for read, name in ((True, "floor"), (False, "floor without the read")):
                    runs.setdefault(name, []).append(
                        _floor(work, template, r, recommend_lua, duration_s, read=read)
                    )
            for rev in trees:
                with _tree(rev, work) as name:
                    data = seed.copy_data(template, work / f"data-{r}-{rev}")
                    with server.banditrec(data, appendfsync="everysec") as srv:
                        if recommend:
                            runs.setdefault(f"{name} recommend", []).append(
                                measured(srv, "/v1/recommend", recommend_lua, duration_s)
                            )
                        if feedback:
                            runs.setdefault(f"{name} feedback x100", []).append(
                                measured(srv, "/v1/feedback", feedback_lua, duration_s, per=100)
                            )
    return _summary(runs)


def _floor(
    work: Path, template: Path, r: int, lua: Path, duration_s: int, *, read: bool
) -> dict[str, Any]:
    """Run wrk once against the floor app, reading its own copy of the seeded Redis."""
    data = seed.copy_data(template, work / f"data-{r}-floor-{int(read)}")
    with (
        server.banditrec(data, appendfsync="everysec") as srv,
        server.floor(work, srv.redis_url, read=read) as app,
    ):
        return measured(app, "/v1/recommend", lua, duration_s, redis_of=srv)


def _summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def median(name: str, key: str) -> float:
        return float(statistics.median(r.get(key) or 0.0 for r in runs[name]))

    hello_rps = median("hello", "rps")
    rows = {}
    for name in runs:
        per = 100 if name.endswith("x100") else 1
        rows[name] = {
            "rps": median(name, "rps"),
            "units_per_s": per * median(name, "rps"),
            "of_hello_rps": round(per * median(name, "rps") / hello_rps, 3),
            "server_cpu_ms_per_request": median(name, "server_cpu_ms_per_request"),
            "redis_cpu_us_per_unit": median(name, "redis_cpu_us_per_unit"),
            "p50_ms": median(name, "p50_ms"),
            "p99_ms": median(name, "p99_ms"),
            "loads": [r["load"][0] for r in runs[name]],
        }
    return {"rows": rows, "runs": runs}


def half_peak(
    work: Path, template: Path, *, users: int, duration_s: int, peak_rps: float
) -> dict[str, Any]:
    """Pace wrk to about half the peak recommend rate; return the rate reached, p50 and p99."""
    data = seed.copy_data(template, work / "data-paced")
    connections = 16
    tries = []
    with server.banditrec(data, appendfsync="everysec") as srv:
        # Start from the delay that would give half the peak with zero latency, then correct.
        delay_ms = max(1, round(1000 * connections / (peak_rps / 2)))
        for _ in range(4):
            lua = work / "wrk-paced.lua"
            lua.write_text(_PACED_LUA % {"users": users, "delay_ms": delay_ms})
            figures = measured(srv, "/v1/recommend", lua, duration_s)
            figures["delay_ms"] = delay_ms
            tries.append(figures)
            ratio = figures["rps"] / (peak_rps / 2)
            if 0.85 <= ratio <= 1.15:
                break
            delay_ms = max(1, round(delay_ms * ratio))
    best = min(tries, key=lambda f: abs(f["rps"] / (peak_rps / 2) - 1))
    return {
        "peak_rps": peak_rps,
        "rps": best["rps"],
        "p50_ms": best.get("p50_ms"),
        "p99_ms": best.get("p99_ms"),
        "p99_over_p50": round(best["p99_ms"] / best["p50_ms"], 2) if best.get("p50_ms") else None,
        "load": best["load"],
        "tries": tries,
    }


def workers(
    work: Path, template: Path, *, users: int, items: int, rounds: int, duration_s: int
) -> dict[str, Any]:
    """Alternate recommend under 1 and 2 uvicorn workers; median req/s of each and the ratio."""
    lua = wrk.script(work, "recommend", users=users, items=items)
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for r in range(rounds):
        for count in (1, 2):
            data = seed.copy_data(template, work / f"data-w{count}-{r}")
            with server.banditrec(data, appendfsync="everysec", workers=count) as srv:
                # Warm every worker's snapshot before measuring.
                wrk.run(srv.base_url + "/v1/recommend", lua, duration_s=2)
                runs[count].append(measured(srv, "/v1/recommend", lua, duration_s))
    rps = {c: statistics.median(f["rps"] for f in runs[c]) for c in runs}
    return {
        "rps": rps,
        "ratio": round(rps[2] / rps[1], 3) if rps[1] else None,
        "loads": {c: [f["load"][0] for f in runs[c]] for c in runs},
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> None:
    """Seed (or reuse) a world and run the chosen parts; print and save the results."""
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--template", type=Path, help="a seeded data folder to reuse")
    parser.add_argument("--tree", action="append", help="revision to serve (repeatable)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--parts", default="compare", help="compare,half_peak,workers")
    parser.add_argument("--no-feedback", action="store_true")
    parser.add_argument("--no-recommend", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if wrk.ensure() is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    results: dict[str, Any] = {"machine": machine.facts(), "load_start": machine.load()}
    with tempfile.TemporaryDirectory(prefix="bench-hotpath-") as tmp:
        work = Path(tmp)
        template = args.template
        if template is None or not template.exists():
            template = template or work / "template"
            results["world"] = seed.template(template, args.items, args.users)
        trees: list[str | None] = list(args.tree or [None])
        parts = args.parts.split(",")
        common = {"users": args.users, "duration_s": args.duration}
        if "compare" in parts:
            results["compare"] = compare(
                work, template, trees, items=args.items, rounds=args.rounds,
                feedback=not args.no_feedback, recommend=not args.no_recommend, **common,
            )  # fmt: skip
            for name, row in results["compare"]["rows"].items():
                print(name, json.dumps(row), flush=True)
        if "half_peak" in parts:
            peak = results.get("compare", {}).get("rows", {})
            recommend = [r["rps"] for n, r in peak.items() if n.endswith("recommend")]
            results["half_peak"] = half_peak(
                work, template, peak_rps=recommend[-1] if recommend else 300.0, **common
            )
            print(
                "half_peak",
                json.dumps({k: v for k, v in results["half_peak"].items() if k != "tries"}),
            )
        if "workers" in parts:
            results["workers"] = workers(
                work, template, items=args.items, rounds=args.rounds, **common
            )
            print(
                "workers", json.dumps({k: v for k, v in results["workers"].items() if k != "runs"})
            )
    results["load_end"] = machine.load()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
