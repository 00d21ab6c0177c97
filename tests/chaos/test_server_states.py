"""Chaos: a running `banditrec serve` whose Redis fills up, or is demoted by a failover.

Real processes only: the service, and redis-servers of the test's own. Feedback batches
and recommends run in a thread throughout; the fault lands under that load and is then
repaired as an operator would (raise maxmemory, fail back). Every answer is a 200 or a
503 naming the cause, recommend always answers, and once the batches that got a 503 are
resent, every acknowledged event is counted exactly once. Bounded: each phase waits at
most a few seconds, the load stops at a fixed number of batches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from evaluation.child import free_port, stop, wait_until_ready
from tests.service.redis_servers import RedisServer, fail_over, wait_for

pytestmark = pytest.mark.slow

ITEMS = [f"i{n}" for n in range(20)]
BATCH = 40  # events per feedback batch
MAX_BATCHES = 400  # the load stops here at the latest


@contextmanager
def serving(redis_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """Run `banditrec serve` on the given Redis; yield a client of it; stop it cleanly."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {
        "BANDITREC_REDIS_URL": redis_url,
        "BANDITREC_PORT": str(port),
        "BANDITREC_REDIS_TIMEOUT_S": "2",
        "BANDITREC_SNAPSHOT_MS": "200",
    }
    log = tmp_path / "serve.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", process, log, timeout_s=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            yield client
    finally:
        assert stop(process) == 0, log.read_text()


class Load:
    """Feedback batches of fresh events, and a recommend before each, from a thread.

    Keeps every answer's status and code, and the batches still owed a 200.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self.stale = 0
        self.owed: list[list[dict[str, str]]] = []
        self.events: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._batches = 0

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()

    def _note(self, route: str, response: httpx.Response) -> None:
        code = response.json()["error"]["code"] if response.status_code != 200 else ""
        self.answers[(route, response.status_code, code)] += 1

    def _run(self) -> None:
        while not self._stop.is_set() and self._batches < MAX_BATCHES:
            n = self._batches
            self._batches += 1
            user = f"u{n % 13}"
            rec = self.client.post("/v1/recommend", json={"user_id": user, "k": 3})
            self._note("recommend", rec)
            if rec.status_code == 200:
                self.stale += rec.json()["stale"]
            batch = [
                {"event_id": f"b{n}-{j}", "type": "impression" if j % 4 else "click",
                 "user_id": user, "item_id": ITEMS[(n + j) % len(ITEMS)]}
                for j in range(BATCH)
            ]  # fmt: skip
            self.events += batch
            response = self.client.post("/v1/feedback", json={"events": batch})
            self._note("feedback", response)
            if response.status_code != 200:
                self.owed.append(batch)

    def seen(self, route: str, status: int, code: str = "") -> bool:
        """Return whether some answer had this route, status and code."""
        return self.answers[(route, status, code)] > 0


def _resend_owed(client: httpx.Client, load: Load) -> None:
    """Resend every batch that got a 503 until it gets a 200 (a client's duty, per api.md)."""
    for batch in load.owed:
        response = client.post("/v1/feedback", json={"events": batch})
        assert response.status_code == 200, response.text
        counted = response.json()
        assert counted["accepted"] + counted["duplicates"] == len(batch)


def _assert_counted_once(client: httpx.Client, load: Load) -> None:
    """Every event sent is in the global arms exactly once."""
    arms = client.get("/v1/arms", params={"limit": 1000}).json()["arms"]
    kinds = Counter(event["type"] for event in load.events)
    assert sum(arm["impressions"] for arm in arms) == kinds["impression"]
    assert sum(arm["clicks"] for arm in arms) == kinds["click"]


def _assert_no_server_errors(load: Load, fault_codes: set[str]) -> None:
    """200s, and 503s whose code names the fault; recommend always answers."""
    for (route, status, code), _ in load.answers.items():
        assert status == 200 or (status == 503 and code in fault_codes), (route, status, code)
        assert route != "recommend" or status == 200


def _readiness(client: httpx.Client) -> str:
    """Return "ok", or the code of /readyz's 503."""
    ready = client.get("/readyz")
    if ready.status_code == 200:
        return "ok"
    assert ready.status_code == 503, ready.text
    code: str = ready.json()["error"]["code"]
    return code


def _seed(client: httpx.Client) -> None:
    items = {"items": [{"item_id": item} for item in ITEMS]}
    assert client.post("/v1/items/bulk", json=items).status_code == 200


def test_redis_out_of_memory_under_load(tmp_path):
    with RedisServer(tmp_path / "redis") as server, serving(server.url, tmp_path) as client:
        _seed(client)
        with Load(client) as load:
            wait_for(lambda: load.seen("feedback", 200), "feedback is counted")
            used = server.info("memory")["used_memory"]
            assert isinstance(used, int)
            server.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
            # Room for a few batches' dedupe markers and user state: the load fills it.
            server.command("CONFIG", "SET", "maxmemory", used + 200_000)
            wait_for(
                lambda: load.seen("feedback", 503, "redis_out_of_memory"),
                "redis is out of memory",
                timeout_s=60,
            )
            # Right at the limit, a small write may still fit while a batch does not: the
            # probe follows within moments, as the load keeps memory over the limit.
            wait_for(
                lambda: _readiness(client) == "redis_out_of_memory",
                "/readyz says out of memory",
            )
            stale_before = load.stale
            wait_for(lambda: load.stale > stale_before, "recommend serves stale", timeout_s=30)

            server.command("CONFIG", "SET", "maxmemory", 0)  # the operator adds memory
            wait_for(lambda: _readiness(client) == "ok", "ready again")
            settled = len(load.events)
            wait_for(lambda: len(load.events) > settled + 2 * BATCH, "load goes on")
        _assert_no_server_errors(load, {"redis_out_of_memory"})
        assert load.owed, "the fault was never hit"
        _resend_owed(client, load)
        _assert_counted_once(client, load)


def test_redis_failover_leaves_the_service_on_a_read_only_replica(tmp_path):
    with (
        RedisServer(tmp_path / "first") as first,
        RedisServer(tmp_path / "second") as second,
        serving(first.url, tmp_path) as client,
    ):
        _seed(client)
        with Load(client) as load:
            wait_for(lambda: load.seen("feedback", 200), "feedback is counted")
            # A coordinated failover: `first` hands every write to `second`, then becomes
            # its read-only replica; the service still points at `first`.
            fail_over(first, second)
            wait_for(
                lambda: load.seen("feedback", 503, "redis_read_only"),
                "writes are refused as read-only",
                timeout_s=30,
            )
            wait_for(lambda: _readiness(client) == "redis_read_only", "/readyz says read-only")
            stale_before = load.stale
            wait_for(lambda: load.stale > stale_before, "recommend serves stale", timeout_s=30)

            fail_over(second, first)  # fail back: `first` is the master again
            wait_for(lambda: _readiness(client) == "ok", "ready again")
            settled = len(load.events)
            wait_for(lambda: len(load.events) > settled + 2 * BATCH, "load goes on")
        # While a failover pauses writes or the demoted server loads its master's data,
        # a call may time out or meet LOADING: redis_unavailable, as for a lost connection.
        _assert_no_server_errors(load, {"redis_read_only", "redis_unavailable"})
        assert load.owed, "the fault was never hit"
        _resend_owed(client, load)
        _assert_counted_once(client, load)
