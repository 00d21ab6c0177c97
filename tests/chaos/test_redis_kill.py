"""Redis is SIGKILLed under feedback load and restarted from its AOF (appendfsync always)."""

from __future__ import annotations

import threading

import pytest

from tests.chaos.feedback import (
    Answers,
    add_items,
    clients,
    expected_counts,
    feedback_events,
    in_batches,
    resend_reports_duplicates,
    send_lane,
    served_counts,
    stored_counts,
)
from tests.chaos.processes import settle

pytestmark = pytest.mark.slow

LANES = 4


def test_redis_killed_under_load_loses_and_doubles_no_acknowledged_event(redis_server, start_serve):
    serve = start_serve(workers=2, redis_url=redis_server.url, redis_timeout_s=0.5)
    events = feedback_events(1600, seed=11, prefix="kill")
    batches = in_batches(events, 20)
    answers = Answers()
    restarted = threading.Event()
    with serve.client() as http:
        add_items(http)
        with clients(answers, LANES) as pool:
            senders = [
                pool.submit(send_lane, serve.base_url, batches[n::LANES], answers, restarted)
                for n in range(LANES)
            ]
            try:
                answers.wait_for(lambda a: a.acknowledged >= 20, "20 batches acknowledged")
                redis_server.kill()
                answers.wait_for(lambda a: a.statuses[503] >= LANES, "clients see the outage")
                assert http.get("/readyz").status_code == 503
                redis_server.start()
            finally:
                restarted.set()
            for sender in senders:
                sender.result()

        assert answers.server_errors() == {}, answers.statuses
        assert set(answers.statuses) == {200, 503}, answers.statuses
        assert answers.first_send_duplicates == 0
        settle(lambda: http.get("/readyz").status_code == 200, "workers reconnect")
        expected = expected_counts(events)
        with redis_server.client() as client:
            assert stored_counts(client) == expected
        assert served_counts(http) == expected
        # Some 503s may have landed before Redis died: their resends were duplicates.
        assert answers.accepted <= len(events)
        resend_reports_duplicates(http, batches)
