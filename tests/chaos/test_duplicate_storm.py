"""Clients resend overlapping batches (the same event ids) to two worker processes at once."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.chaos.feedback import (
    Answers,
    add_items,
    clients,
    expected_counts,
    feedback_events,
    send_lane,
    served_counts,
    stored_counts,
)

pytestmark = pytest.mark.slow

CLIENTS = 6
EVENTS = 800
WINDOW = 100


def test_overlapping_batches_across_workers_count_each_event_once(redis_server, start_serve):
    serve = start_serve(workers=2, redis_url=redis_server.url)
    events = feedback_events(EVENTS, seed=14, prefix="storm")
    rng = random.Random(14)
    plans = []
    for _ in range(CLIENTS):
        # Windows of 2*WINDOW events every WINDOW: each event after the first WINDOW is in
        # two batches of each client, sent in the client's own order.
        starts = list(range(0, EVENTS, WINDOW))
        rng.shuffle(starts)
        plans.append([events[start : start + 2 * WINDOW] for start in starts])
    answers = Answers()
    # No keep-alive: every batch is a new connection, which either worker may accept.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with serve.client() as http:
        add_items(http)
        with clients(answers, CLIENTS) as pool:
            senders = [
                pool.submit(send_lane, serve.base_url, plan, answers, limits=no_reuse)
                for plan in plans
            ]
            for sender in senders:
                sender.result()

        assert dict(answers.statuses) == {200: CLIENTS * len(plans[0])}
        # Across all clients and workers, each event was reported accepted exactly once.
        assert answers.accepted == EVENTS
        expected = expected_counts(events)
        with redis_server.client() as client:
            assert stored_counts(client) == expected
        assert served_counts(http) == expected
