"""Locust user for the endpoint and ingest benchmarks (loaded by locust, never imported).

Configured by environment: BENCH_MODE (recommend | feedback), BENCH_USERS, BENCH_ITEMS,
BENCH_BATCH (events per feedback request), BENCH_TIMES (file for the raw response times).
No think time: every simulated user sends its next request as soon as the last answers.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

MODE = os.environ.get("BENCH_MODE", "recommend")
USERS = int(os.environ.get("BENCH_USERS", "10000"))
ITEMS = int(os.environ.get("BENCH_ITEMS", "1000"))
BATCH = int(os.environ.get("BENCH_BATCH", "100"))
TIMES_PATH = os.environ.get("BENCH_TIMES")
CLICK_SHARE = 0.05

_RUN = uuid.uuid4().hex[:8]
_event_ids = itertools.count()
_times: list[float] = []
_window = {"start": time.time(), "end": time.time(), "failures": 0}


@events.spawning_complete.add_listener
def _reset(user_count: int, **_: object) -> None:
    # Measure the steady state only, like locust's own --reset-stats.
    _times.clear()
    _window.update(start=time.time(), end=time.time(), failures=0)


@events.request.add_listener
def _record(response_time: float, exception: object, **_: object) -> None:
    _window["end"] = time.time()
    if exception is None:
        _times.append(response_time)
    else:
        _window["failures"] += 1


@events.quitting.add_listener
def _dump(**_: object) -> None:
    if TIMES_PATH:
        with open(TIMES_PATH, "w") as sink:
            json.dump({"times_ms": _times, **_window}, sink)


def _event(kind: str) -> dict[str, str]:
    return {
        "event_id": f"b{_RUN}-{next(_event_ids)}",
        "type": kind,
        "user_id": f"u{random.randrange(USERS)}",
        "item_id": f"i{random.randrange(ITEMS)}",
    }


class BenchUser(FastHttpUser):
    """Sends recommend requests, or feedback batches of BENCH_BATCH events, back to back."""

    wait_time = constant(0)

    @task
    def hit(self) -> None:
        if MODE == "recommend":
            body = {"user_id": f"u{random.randrange(USERS)}", "k": 10}
            self.client.post("/v1/recommend", json=body, name="recommend")
        else:
            batch = [
                _event("click" if random.random() < CLICK_SHARE else "impression")
                for _ in range(BATCH)
            ]
            self.client.post("/v1/feedback", json={"events": batch}, name=f"feedback x{BATCH}")
