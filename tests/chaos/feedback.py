"""Feedback clients that resend what was not acknowledged, the answers they got, and the
counts the service should end with."""

from __future__ import annotations

import collections
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis

from service.store.keys import Keys

ITEMS = [f"i{n}" for n in range(8)]
# Every chaos test gives up on a batch after this long: a fault that never heals fails.
DELIVERY_TIMEOUT_S = 90.0
# What a client does after a 503 or a dropped connection: wait a little, send it again.
RESEND_PAUSE_S = 0.05
# A dropped connection (the serve process died under the request) is noted as this status.
DROPPED = 0


def feedback_events(n: int, seed: int, prefix: str) -> list[dict[str, str]]:
    """Return n seeded impression/click events on ITEMS, each with its own event_id."""
    rng = random.Random(seed)
    return [
        {
            "event_id": f"{prefix}-{n}",
            "type": "click" if rng.random() < 0.25 else "impression",
            "user_id": f"u{rng.randrange(20)}",
            "item_id": rng.choice(ITEMS),
        }
        for n in range(n)
    ]


def in_batches(events: list[dict[str, str]], size: int) -> list[list[dict[str, str]]]:
    """Return consecutive batches of `size` events."""
    return [events[n : n + size] for n in range(0, len(events), size)]


def add_items(http: httpx.Client) -> None:
    """Create ITEMS, asserting success."""
    items = [{"item_id": item} for item in ITEMS]
    response = http.post("/v1/items/bulk", json={"items": items})
    assert response.status_code == 200, response.text


class Answers:
    """Every status clients were answered (thread-safe), and how many batches got a 200."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.acknowledged = 0
        self.accepted = 0
        # Duplicates reported for batches on their first send: with events of their own,
        # a batch can only be told of duplicates after a resend.
        self.first_send_duplicates = 0
        self.given_up = False
        self._changed = threading.Condition()

    def note(self, status: int, body: dict[str, Any] | None = None, resent: bool = False) -> None:
        """Record one answer (with its body if it acknowledged the batch)."""
        with self._changed:
            self.statuses[status] += 1
            if body is not None:
                self.acknowledged += 1
                self.accepted += body["accepted"]
                if not resent:
                    self.first_send_duplicates += body["duplicates"]
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[Answers], bool], what: str) -> None:
        """Return once condition(self) holds; fail saying `what` did not happen in time."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), DELIVERY_TIMEOUT_S):
                raise AssertionError(f"not within {DELIVERY_TIMEOUT_S:.0f} s: {what}")

    def give_up(self) -> None:
        """Make every client stop resending: the test has failed already."""
        self.given_up = True

    def server_errors(self) -> dict[int, int]:
        """Return the counts of 5xx other than the documented 503."""
        return {s: n for s, n in self.statuses.items() if s >= 500 and s != 503}


def deliver(http: httpx.Client, batch: list[dict[str, str]], answers: Answers) -> dict[str, Any]:
    """Post a batch until it is acknowledged (resending after a 503 or a dropped connection);
    return the acknowledging answer."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    resent = False
    while time.monotonic() < deadline and not answers.given_up:
        try:
            response = http.post("/v1/feedback", json={"events": batch})
        except httpx.TransportError:
            answers.note(DROPPED)
        else:
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                answers.note(200, body, resent)
                return body
            answers.note(response.status_code)
            assert response.status_code == 503, response.text
        resent = True
        time.sleep(RESEND_PAUSE_S)
    raise AssertionError(f"batch {batch[0]['event_id']}.. not acknowledged")


@contextlib.contextmanager
def clients(answers: Answers, n: int) -> Iterator[ThreadPoolExecutor]:
    """Yield a pool of n client threads that give up resending if the test fails meanwhile."""
    with ThreadPoolExecutor(n) as pool:
        try:
            yield pool
        except BaseException:
            answers.give_up()
            raise


def send_lane(
    base_url: str,
    lane: list[list[dict[str, str]]],
    answers: Answers,
    healed: threading.Event | None = None,
    **client: Any,
) -> None:
    """Deliver batches in order over one client of base_url; the last one only once `healed`
    is set, so that the load goes on through a fault however fast the rest went."""
    with httpx.Client(base_url=base_url, timeout=30, **client) as http:
        for n, batch in enumerate(lane):
            if healed is not None and n == len(lane) - 1:
                assert healed.wait(DELIVERY_TIMEOUT_S), "the fault was not healed"
            deliver(http, batch, answers)


Counts = dict[str, tuple[float, float]]


def expected_counts(events: list[dict[str, str]]) -> Counts:
    """Return {item: (impressions, clicks)} when every event is counted exactly once."""
    unique = {event["event_id"]: event for event in events}.values()
    return {
        item: (
            sum(e["item_id"] == item and e["type"] == "impression" for e in unique),
            sum(e["item_id"] == item and e["type"] == "click" for e in unique),
        )
        for item in ITEMS
    }


def served_counts(http: httpx.Client) -> Counts:
    """Return {item: (impressions, clicks)} as /v1/arms reports them."""
    counts = {}
    for item in ITEMS:
        response = http.get(f"/v1/arms/{item}")
        assert response.status_code == 200, response.text
        arm = response.json()["global"]
        counts[item] = (arm["impressions"], arm["clicks"])
    return counts


def stored_counts(client: redis.Redis, prefix: str = "br") -> Counts:
    """Return {item: (impressions, clicks)} as the raw global count hashes hold them."""
    keys = Keys(prefix)
    totals = {item: [0.0, 0.0] for item in ITEMS}
    for shard in range(keys.shards):
        for n, kind in enumerate(("imp", "clk")):
            for item, value in client.hgetall(keys.arms(kind, shard=shard)).items():
                name = item.decode() if isinstance(item, bytes) else item
                if name in totals:
                    totals[name][n] += float(value)
    return {item: (imp, clk) for item, (imp, clk) in totals.items()}


def resend_reports_duplicates(http: httpx.Client, batches: list[list[dict[str, str]]]) -> None:
    """Assert that every batch, sent again, is reported as duplicates only."""
    for batch in batches:
        response = http.post("/v1/feedback", json={"events": batch})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["accepted"], body["duplicates"]) == (0, len(batch)), body
