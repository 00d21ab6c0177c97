"""A write Redis applied but never confirmed: the 503 says it may have been applied.

Between the service and a real Redis sits a proxy that loses Redis's replies to the
writes (tests/service/lost_replies.py): the batch is counted, the service times out.
"""

from __future__ import annotations

import json

import pytest

from tests.service.helpers import add_items, event, exported_lists, send
from tests.service.lost_replies import LostReplies
from tests.service.redis_servers import RedisServer
from tests.service.test_redis_states import serving

pytestmark = pytest.mark.anyio


async def test_a_feedback_batch_applied_without_an_answer_is_a_503_that_says_so(tmp_path):
    with RedisServer(tmp_path / "lossy") as server:
        async with (
            LostReplies(server.port) as proxy,
            serving(proxy.url, redis_timeout_s=0.3) as (_app, client),
        ):
            await add_items(client, ["a", "b"])
            # Redis has the scripts: the lost reply is the batch's, not a NOSCRIPT.
            assert (await send(client, [event("impression", "v", "b")])).status_code == 200
            batch = [event("impression", "u", "a"), event("click", "u", "a")]
            proxy.lose_after = b"EVALSHA"
            lost = await send(client, batch)
            assert lost.status_code == 503, lost.text
            error = lost.json()["error"]
            assert error["code"] == "redis_unavailable"
            assert "nothing was written" not in error["message"]
            assert "may have been applied" in error["message"]
            assert "resend the same batch" in error["message"]
            assert proxy.lost >= 1

            proxy.lose_after = None
            # It was applied: resent, every event comes back as a duplicate, counted once.
            again = await send(client, batch)
            assert again.json() == {"accepted": 0, "duplicates": 2, "unknown_rec_ids": []}
            arm = (await client.get("/v1/arms/a")).json()["global"]
            assert (arm["impressions"], arm["clicks"]) == (1, 1)


async def test_an_item_write_applied_without_an_answer_is_a_503_that_says_so(tmp_path):
    with RedisServer(tmp_path / "lossy") as server:
        async with (
            LostReplies(server.port) as proxy,
            serving(proxy.url, redis_timeout_s=0.3) as (_app, client),
        ):
            await add_items(client, ["b"])  # Redis has the script: the lost reply is the write's
            proxy.lose_after = b"EVALSHA"
            lost = await client.put("/v1/items/a", json={"tags": ["x"]})
            assert lost.status_code == 503, lost.text
            message = lost.json()["error"]["message"]
            assert "may have been applied" in message and "resend the same request" in message
            proxy.lose_after = None
            assert (await client.get("/v1/items/a")).json()["tags"] == ["x"]
            assert (await client.put("/v1/items/a", json={"tags": ["x"]})).status_code == 200


async def test_an_export_cut_short_by_redis_ends_with_an_error_line(tmp_path):
    with RedisServer(tmp_path / "lossy") as server:
        async with (
            LostReplies(server.port) as proxy,
            serving(proxy.url, redis_timeout_s=0.3) as (app, client),
        ):
            await add_items(client, ["a", "b"])
            rec = await client.post("/v1/recommend", json={"user_id": "u", "k": 1})
            await app.state.engine.pending_lists.flush()  # written after the response
            with server.client() as direct:
                served = direct.get(f"br:rec:{{{rec.json()['rec_id']}}}")
                with direct.pipeline(transaction=False) as pipe:
                    for n in range(2999):  # the same list under more rec_ids: a long export
                        pipe.set(f"br:rec:{{copy{n}}}", served, ex=3600)
                    pipe.execute()
            # The export SCANs the lists in steps; Redis stops answering at the second.
            proxy.lose_after, proxy.lose_from = b"SCAN", 2
            cut = await client.get("/v1/admin/logs/export")
            assert cut.status_code == 200  # sent before Redis failed
            *lines, last = [json.loads(line) for line in cut.text.splitlines()]
            assert last["error"]["code"] == "redis_unavailable", last
            assert 0 < len(lines) < 3000 and all("rec_id" in line for line in lines)

            proxy.lose_after = None
            whole = await client.get("/v1/admin/logs/export")
            assert len(exported_lists(whole.text)) == 3000
