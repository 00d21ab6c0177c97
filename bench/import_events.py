"""`banditrec import-events` on generated events: events/s and the command's peak RSS.

`python -m bench.import_events --events 1000000` writes an NDJSON file of N events (1000
items, 10k users, 30 days, 1 in 10 a click), starts an embedded Redis (fsync always, as
`serve` by default) in a temp folder with the catalog, runs the command as a child process
(`python -m cli import-events`), reruns it (every event then a duplicate), and reports wall
time, events/s and the child's peak RSS (`ru_maxrss` of that child, from os.wait4). Peak
RSS must not grow with N: the file is streamed in batches of 1000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import machine
from service.embedded import EmbeddedRedis
from service.store import Store
from service.store.codecs import item_meta

ROOT = Path(__file__).resolve().parent.parent
N_ITEMS = 1000
N_USERS = 10_000
SPAN_S = 30 * 86400


def generate(path: Path, n_events: int, seed: int = 0) -> None:
    """Write n_events NDJSON events in time order: 9 impressions to 1 click."""
    rng = np.random.default_rng(seed)
    start = time.time() - SPAN_S - 86400
    chunk = 100_000
    with path.open("w") as out:
        for first in range(0, n_events, chunk):
            n = min(chunk, n_events - first)
            users = rng.integers(0, N_USERS, n)
            items = rng.integers(0, N_ITEMS, n)
            clicks = rng.random(n) < 0.1
            times = start + (first + np.arange(n)) * (SPAN_S / n_events)
            out.writelines(
                json.dumps(
                    {
                        "event_id": f"x{first + k}",
                        "type": "click" if clicks[k] else "impression",
                        "user_id": f"u{users[k]}",
                        "item_id": f"i{items[k]}",
                        "ts": round(float(times[k]), 3),
                    }
                )
                + "\n"
                for k in range(n)
            )


async def _seed_catalog(url: str) -> None:
    store = Store(url)
    try:
        meta = item_meta([], [], True, 0.0)
        await store.upsert_items([(f"i{n}", meta, None) for n in range(N_ITEMS)])
    finally:
        await store.close()


def _run_command(path: Path, url: str) -> dict[str, Any]:
    """Run import-events in a child process; return its wall time, peak RSS and summary."""
    env = {**os.environ, "BANDITREC_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
    # Files, not pipes: the child must never block on a full pipe while we wait for it.
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "cli", "import-events", str(path)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        # wait4 gives this child's own rusage: the Redis server (also our child) is not in it.
        _, status, usage = os.wait4(child.pid, 0)
        wall_s = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"import-events exited {child.returncode}: {err_path.read_text()}")
    progress = [line for line in err_path.read_text().splitlines() if "/s" in line]
    return {
        "wall_s": round(wall_s, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "summary": out_path.read_text().strip(),
        "progress": progress[-2:],
    }


def run(n_events: int, work: Path) -> dict[str, Any]:
    """Return the figures of one import and one rerun of n_events generated events."""
    path = work / "events.ndjson"
    generate(path, n_events)
    with EmbeddedRedis(work / "data", appendfsync="always") as server:
        asyncio.run(_seed_catalog(server.url))
        first = _run_command(path, server.url)
        rerun = _run_command(path, server.url)
    for result in (first, rerun):
        result["events_per_s"] = round(n_events / result["wall_s"])
    return {
        "events": n_events,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "import": first,
        "rerun": rerun,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark at the sizes asked for and print the results as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.import_events")
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    facts = machine.facts()
    results: dict[str, Any] = {"machine": facts, "runs": []}
    for n_events in args.events:
        with tempfile.TemporaryDirectory(prefix="banditrec-import-") as work:
            results["runs"].append(run(n_events, Path(work)))
    results["machine"]["load_after"] = machine.load()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
