"""Every key is built in service/store/keys.py, and docs/redis-keys.md is its current table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.asyncio as redis

from service.store.keys import Keys, key_table, markdown, tagged_id
from tests.service.clusters import two_taste_world
from tests.service.helpers import event, send

ROOT = Path(__file__).resolve().parents[2]


def test_docs_redis_keys_is_current():
    # Regenerate with `python -m service.store > docs/redis-keys.md`.
    assert (ROOT / "docs" / "redis-keys.md").read_text() == markdown()


def _pattern(documented: str, prefix: str) -> re.Pattern[str]:
    """Return the regex of a documented key: P the prefix, capitals placeholders."""
    regex = re.escape(documented.replace("{S}", "SHARD_TAG"))
    regex = regex.replace("SHARD_TAG", r"\{arms(?:\.\d+\.\d+)?\}")
    regex = regex.replace(r"imp\|clk\|cnv", "(imp|clk|cnv)")
    regex = regex.replace(r"G:C\|global", r"(\d+:\d+|global)").replace("G:C", r"\d+:\d+")
    for placeholder in ("EVENT_ID", "USER", "REC_ID"):
        regex = regex.replace(placeholder, r"[^{}]+")
    assert regex.startswith("P:")
    return re.compile(re.escape(prefix) + regex[1:])


@pytest.mark.anyio
async def test_every_key_the_service_writes_is_in_the_table(start, redis_url):
    svc = await start(half_life_h=1.0)
    await two_taste_world(svc)
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.status_code == 200, fit.text
    served = await svc.client.post("/v1/recommend", json={"user_id": "xfan0", "k": 2})
    rec_id = served.json()["rec_id"]
    item, other = (entry["item_id"] for entry in served.json()["items"])
    events = [event("impression", "xfan0", i, rec_id) for i in (item, other)]
    events.append(event("click", "xfan0", item, rec_id))
    response = await send(svc.client, [*events, event("conversion", "xfan0", item)])
    assert response.status_code == 200, response.text
    assert (await svc.client.get("/readyz")).status_code == 200  # writes its probe key

    patterns = [_pattern(row.pattern, "br") for row in key_table()]
    client = redis.Redis.from_url(redis_url)
    stored = [key.decode() async for key in client.scan_iter(match="br:*")]
    await client.aclose()
    undocumented = [key for key in stored if not any(p.fullmatch(key) for p in patterns)]
    assert undocumented == []
    # Every documented key was written: the scenario covers the table.
    unwritten = [p.pattern for p in patterns if not any(p.fullmatch(key) for key in stored)]
    assert unwritten == []


def test_ids_come_back_out_of_the_keys_that_carry_them():
    keys = Keys("br")
    assert tagged_id(keys.user("u:{1}", "seen")) == "u:{1}"
    assert tagged_id(keys.rec("r1")) == "r1"
    assert keys.marker_event_id(keys.marker("ev:1")) == "ev:1"
    assert keys.marker_event_id(keys.marker("a}:ev:b")) == "a}:ev:b"
    assert keys.outcomes("r1") == f"{keys.rec('r1')}:out"
    assert list(keys.user_keys("u")) == [
        keys.user("u", part) for part in ("state", "seen", "clicks", "events", "lastclick")
    ]
