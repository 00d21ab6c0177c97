"""A write Redis applied but never confirmed: the 503 says it may have been applied.

Between the service and a real Redis sits a proxy that loses Redis's replies to the
writes (tests/service/lost_replies.py): the batch is counted, the service times out.
"""

from __future__ import annotations

import pytest

from tests.service.helpers import add_items, event, send
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
