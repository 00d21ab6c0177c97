"""Run locust headless as a child process for a bounded time and read back its numbers."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

BENCH_LOCUSTFILE = Path(__file__).resolve().parent / "locust_bench.py"


def percentiles(times_ms: list[float]) -> dict[str, float | None]:
    """Return p50/p95/p99 (ms) of raw response times, None when there are none."""
    if not times_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    values = np.asarray(times_ms)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "p99_ms": round(p99, 2)}


def aggregated_row(stats_csv: Path) -> dict[str, str]:
    """Return locust's 'Aggregated' row of a *_stats.csv file."""
    with stats_csv.open() as source:
        for row in csv.DictReader(source):
            if row["Name"] == "Aggregated":
                return row
    raise RuntimeError(f"no Aggregated row in {stats_csv}")


def run_locust(
    host: str,
    *,
    locustfile: Path = BENCH_LOCUSTFILE,
    users: int,
    duration_s: float,
    csv_prefix: Path,
    env: dict[str, str] | None = None,
    spawn_rate: float | None = None,
    extra_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run locust headless against host; return its aggregate figures and its own CPU time.

    Counts, RPS and exact percentiles come from what the bench locustfile records after
    spawning completes (locust's CSV rounds percentiles to whole milliseconds and its
    RPS is unreliable for runs of a few seconds); the CSV figures are kept alongside.
    """
    times_path = csv_prefix.with_name(csv_prefix.name + "_times.json")
    args = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "--host", host, "-u", str(users), "-r", str(spawn_rate or users),
        "-t", f"{max(1, round(duration_s))}s", "--csv", str(csv_prefix),
        "--reset-stats", "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5",
        *extra_args,
    ]  # fmt: skip
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    child_env |= {"BENCH_TIMES": str(times_path), **(env or {})}
    log = csv_prefix.with_name(csv_prefix.name + "_locust.log")
    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=child_env, stdout=sink, stderr=subprocess.STDOUT)
    # locust stops itself after -t; the watchdog only guards against a hang.
    watchdog = threading.Timer(duration_s + 90, process.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        watchdog.cancel()
    row = aggregated_row(csv_prefix.with_name(csv_prefix.name + "_stats.csv"))
    measured: dict[str, Any] = {"times_ms": [], "start": 0.0, "end": 0.0, "failures": 0}
    if times_path.exists():
        measured = json.loads(times_path.read_text())
        with contextlib.suppress(OSError):
            times_path.unlink()
    times = measured["times_ms"]
    window = max(measured["end"] - measured["start"], 1e-9)
    requests = len(times) + int(measured["failures"])
    return {
        "requests": requests,
        "failures": int(measured["failures"]),
        "rps": round(requests / window, 1) if requests else 0.0,
        "window_s": round(window, 2),
        **percentiles(times),
        "locust_csv": {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1),
            "p50_p95_p99_ms": [row["50%"], row["95%"], row["99%"]],
        },
        "locust_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "locust_exit": process.returncode,
    }
