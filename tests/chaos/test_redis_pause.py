"""Redis hangs (SIGSTOP) past BANDITREC_REDIS_TIMEOUT_S under feedback load, then comes
back (SIGCONT)."""

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

TIMEOUT_S = 0.3
LANES = 4


def test_a_hung_redis_gives_503_or_stale_lists_and_resent_batches_count_once(
    redis_server, start_serve
):
    serve = start_serve(
        workers=2, redis_url=redis_server.url, redis_timeout_s=TIMEOUT_S, snapshot_ms=100
    )
    events = feedback_events(1600, seed=12, prefix="hung")
    batches = in_batches(events, 20)
    answers = Answers()
    resumed = threading.Event()
    recommend = {"user_id": "u1", "k": 3}
    with serve.client() as http:
        add_items(http)
        settle(
            lambda: len(http.post("/v1/recommend", json=recommend).json()["items"]) == 3,
            "the snapshot has the items",
        )
        with clients(answers, LANES) as pool:
            senders = [
                pool.submit(send_lane, serve.base_url, batches[n::LANES], answers, resumed)
                for n in range(LANES)
            ]
            answers.wait_for(lambda a: a.acknowledged >= 10, "10 batches acknowledged")
            redis_server.pause()
            try:
                answers.wait_for(lambda a: a.statuses[503] >= LANES, "clients see the hang")
                hung = [http.post("/v1/recommend", json=recommend) for _ in range(3)]
                arm, ready = http.get("/v1/arms/i0"), http.get("/readyz")
            finally:
                redis_server.resume()
                resumed.set()
            for sender in senders:
                sender.result()

        assert (arm.status_code, ready.status_code) == (503, 503)
        for response in hung:
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                assert response.json()["stale"] is True
                assert len(response.json()["items"]) == 3
        assert answers.server_errors() == {}, answers.statuses
        assert set(answers.statuses) == {200, 503}, answers.statuses
        assert answers.first_send_duplicates == 0

        settle(lambda: http.get("/readyz").status_code == 200, "workers reconnect")
        expected = expected_counts(events)
        with redis_server.client() as client:
            assert stored_counts(client) == expected
        assert served_counts(http) == expected
        # A timed-out batch may have been applied after SIGCONT: its resend said duplicates.
        assert answers.accepted <= len(events)
        resend_reports_duplicates(http, batches)
