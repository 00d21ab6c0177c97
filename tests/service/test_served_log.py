"""The served-list log stays lean, and records of the previous format still read."""

from __future__ import annotations

import json

import pytest

from service.store.codecs import ServedList
from tests.service.helpers import add_items, raw_client

pytestmark = pytest.mark.anyio

# A record as the previous release wrote it (every field, scores to 17 digits): 917 bytes.
PREVIOUS = (
    '{"user_id":"user-000001","gen":1,"cluster":4,"membership":"4:0.33813,1:0.334455,'
    '7:0.327415","ts":1796194475.403227,"surface":"home","item_id":null,"pools":null,"k":10,'
    '"n_candidates":200,"items":["item-00156","item-00026","item-00188","item-00043",'
    '"item-00161","item-00084","item-00090","item-00014","item-00060","item-00078"],'
    '"scores":[0.8517920267979997,0.8490557146987248,0.8437488861496619,0.8403584460861754,'
    "0.8310267212495148,0.8284090974227517,0.8093680368419366,0.800189315141501,"
    '0.7972599519807283,0.7969422208455972],"propensities":[0.06060606060606061,'
    "0.06060606060606061,0.06060606060606061,0.09090909090909091,0.09090909090909091,"
    "0.09090909090909091,0.15151515151515152,0.12121212121212122,0.030303030303030304,"
    '0.09090909090909091],"policy":"bandit","shadows":{"baseline":["item-00000",'
    '"item-00001","item-00002","item-00003","item-00004","item-00005","item-00006",'
    '"item-00007","item-00008","item-00009"]}}'
)


def test_a_record_of_the_previous_format_still_reads():
    served = ServedList.decode(PREVIOUS)
    assert served.item_id is None and served.pools is None and served.cluster == 4
    assert served.scores[7] == 0.800189315141501
    assert ServedList.decode(served.encode()) == served
    assert "null" not in served.encode()


async def test_a_logged_list_is_lean_and_what_the_client_was_answered(svc, redis_url):
    await add_items(svc.client, [f"item-{n:05d}" for n in range(200)])
    await svc.refresh()
    body = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 10})).json()
    client = raw_client(redis_url)
    try:
        record = await client.get(f"br:rec:{{{body['rec_id']}}}")
    finally:
        await client.aclose()
    fields = json.loads(record)
    assert "item_id" not in fields and "pools" not in fields
    # Scores to 6 significant digits (17 made them a fifth of the record).
    assert all(len(f"{s:.6g}") >= len(repr(s)) for s in fields["scores"])
    assert fields["scores"] == [i["score"] for i in body["items"]]
    assert fields["propensities"] == [i["propensity"] for i in body["items"]]
