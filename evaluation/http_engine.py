"""The HTTP engine: the same world and traffic, served by a running banditrec service.

Each step is one POST /v1/recommend and one POST /v1/feedback (impressions, then clicks, with
the rec_id); clusters are refitted with POST /v1/admin/clusters/fit on the simulator's
schedule, with the run's k or, under ``--n-clusters auto``, none (the service chooses it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np

from evaluation.child import free_port, stop, wait_until_ready
from evaluation.config import SimConfig
from evaluation.engine import Reactions, Trace, Traffic
from evaluation.world import World

SERVICE_NAME = "service (http)"
_BULK = 1000
_READY_TIMEOUT_S = 30.0


@contextlib.contextmanager
def launched_service(data_dir: Path, log_path: Path) -> Iterator[str]:
    """Start `banditrec serve` on a free port with its own data folder; yield its base URL.

    BANDITREC_* variables of the caller are dropped so an outside Redis is never touched;
    snapshots refresh every 100 ms so the short simulated runs learn without a 1 s lag.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {
        "BANDITREC_DATA_DIR": str(data_dir),
        "BANDITREC_PORT": str(port),
        "BANDITREC_SNAPSHOT_MS": "100",
        "BANDITREC_REDIS_APPENDFSYNC": "everysec",
        "BANDITREC_LOG_LEVEL": "warning",
    }
    base = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(f"{base}/readyz", process, log_path, _READY_TIMEOUT_S)
        yield base
    finally:
        stop(process)


def run_http(
    world: World,
    config: SimConfig,
    traffic: Traffic,
    base_url: str,
    *,
    on_steps: Callable[[int], None] | None = None,
) -> Trace:
    """Return the trace of the service at ``base_url`` serving the world's traffic."""
    start = time.perf_counter()
    n, k = traffic.click_draws.shape
    trace = Trace.blank(SERVICE_NAME, world.group_of_user[traffic.users], n, k)
    reactions = Reactions(world, config, traffic)
    refits = set(config.refit_steps())
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _upload_items(http, world)
        for t in range(n):
            if t in refits:
                fit = http.post("/v1/admin/clusters/fit", json=fit_request(config))
                if fit.status_code == 200:
                    body = fit.json()
                    trace.refits.append(
                        {"step": t, "gen": body["gen"], "k": body["k"], "n_users": body["n_users"]}
                    )
                elif fit.status_code != 422:  # 422: not enough users with clicks yet
                    fit.raise_for_status()
            user, group, _, truth = reactions.arrive(t)
            response = http.post("/v1/recommend", json={"user_id": f"u{user}", "k": k})
            response.raise_for_status()
            rec = response.json()
            items = np.array([int(i["item_id"][1:]) for i in rec["items"]], dtype=np.intp)
            if items.size != k:
                raise RuntimeError(f"the service served {items.size} items, expected k={k}")
            seen, click = reactions.react(t, truth, items)
            _send_feedback(http, rec["rec_id"], f"u{user}", items, seen, click)
            reactions.record(trace, t, group, truth, items, seen, click)
            if on_steps is not None and (t + 1) % 100 == 0:
                on_steps(100)
    trace.seconds = time.perf_counter() - start
    return trace


def fit_request(config: SimConfig) -> dict[str, int]:
    """Return the body of a refit: without k under n_clusters = "auto", so the service chooses."""
    if isinstance(config.n_clusters, int):
        return {"k": config.n_clusters, "seed": config.seed}
    return {"seed": config.seed}  # "auto"


def _upload_items(http: httpx.Client, world: World) -> None:
    items = [
        {"item_id": f"i{i}", "embedding": [round(float(x), 6) for x in world.embeddings[i]]}
        for i in range(world.n_items)
    ]
    for first in range(0, len(items), _BULK):
        http.post("/v1/items/bulk", json={"items": items[first : first + _BULK]}).raise_for_status()


def _send_feedback(
    http: httpx.Client,
    rec_id: str,
    user_id: str,
    items: np.ndarray,
    seen: np.ndarray,
    click: np.ndarray,
) -> None:
    events = [
        {"event_id": f"{rec_id}-{kind}-{pos}", "type": kind, "user_id": user_id,
         "item_id": f"i{item}", "rec_id": rec_id}
        for kind, mask in (("impression", seen), ("click", click))
        for pos, item in enumerate(items.tolist()) if mask[pos]
    ]  # fmt: skip
    if events:
        http.post("/v1/feedback", json={"events": events}).raise_for_status()
