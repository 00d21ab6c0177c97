"""State export and import: exact round trips, refusals, dedupe after a move, live pickup, CLI."""

from __future__ import annotations

import asyncio
import copy
import functools
import io
import json
import re
import socket
import sys
import time
from typing import Any

import pytest
import redis.asyncio as redis

from cli import main
from service.backup import export_document, import_document
from service.command_context import redis_for_command, store_description
from service.config import Settings
from service.embedded import EmbeddedRedis
from service.state import InvalidState, parse_document
from service.store import Store, StoreUnavailable
from service.store import state as store_state
from service.store.codecs import encode_seen
from service.store.keys import Keys
from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, arm, event, raw_client, send, stored_counts

anyio = pytest.mark.anyio
_CLUSTER_ARMS = re.compile(r"\{arms\}:(at:)?(imp|clk|cnv):(?P<gen>\d+):\d+")


@pytest.fixture
async def raw(redis_url: str):
    """A plain Redis client, to read and plant keys directly."""
    client = raw_client(redis_url)
    yield client
    await client.aclose()


async def _export(make_settings, prefix: str, *, users: bool = False) -> str:
    out = io.StringIO()
    settings = make_settings(key_prefix=prefix)
    await export_document(settings.redis_url, settings, out, users=users)
    return out.getvalue()


async def _import(make_settings, prefix: str, text: str, *, replace: bool = False) -> int:
    settings = make_settings(key_prefix=prefix)
    document = parse_document(text)
    return await import_document(settings.redis_url, settings, document, replace=replace)


async def _stored(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Return every key under the prefix (without it) with its value."""
    keys = {}
    async for raw_key in client.scan_iter(match=f"{prefix}:*"):
        kind = (await client.type(raw_key)).decode()
        if kind == "hash":
            value: Any = await client.hgetall(raw_key)
        elif kind == "string":
            value = await client.get(raw_key)
        elif kind == "list":
            value = await client.lrange(raw_key, 0, -1)
        elif kind == "zset":
            value = await client.zrange(raw_key, 0, -1, withscores=True)
        else:
            value = kind
        keys[raw_key.decode()[len(prefix) + 1 :]] = value
    return keys


def _comparable(keys: dict[str, Any]) -> dict[str, Any]:
    """Return the stored keys minus what an import renumbers or leaves out on purpose."""
    keys = copy.deepcopy(keys)
    gen = keys.get("{clusters}", {}).pop(b"gen", b"0").decode()
    keys["{items}:info"].pop(b"version")
    out = {}
    for name, value in keys.items():
        # The layout record says when the import wrote (store/layout.py).
        if name in ("{arms}:version", "{arms}:changes", "{arms}:layout"):
            continue
        if name.startswith("rec:"):
            continue
        cluster_arms = _CLUSTER_ARMS.fullmatch(name)
        if cluster_arms:
            if cluster_arms["gen"] != gen:
                continue  # an older generation's counts: dead, not exported
            name = name.replace(f":{gen}:", ":G:")
        if name.endswith(":state") and b"assigned" in value:
            value[b"assigned"] = b"G" + value[b"assigned"][len(gen) :]
        out[name] = value
    return out


async def _feedback_after_a_fit(svc) -> None:
    """Two tastes, a 2-cluster fit, then events whose soft credit splits across clusters."""
    await two_taste_world(svc)
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.status_code == 200, fit.text
    events = []
    for n in range(6):
        events += [event("impression", f"xfan{n}", "x1"), event("impression", f"yfan{n}", "x1")]
    events += [event("click", "xfan0", "x1"), event("click", "yfan1", "y2")]
    events += [event("conversion", "xfan0", "x1")]
    response = await send(svc.client, events)
    assert response.status_code == 200, response.text


@anyio
async def test_round_trip_reproduces_every_key(start, raw, make_settings):
    # One count shard: an import writes every count into the first shard, so only then
    # is every key reproduced as it was (test_round_trip_over_shards_keeps_every_sum).
    make_settings = functools.partial(make_settings, count_shards=1)
    # Soft membership at the old temperature: cluster counts become fractional.
    svc = await start(
        key_prefix="src", count_shards=1, membership="soft", soft_temperature=0.1, soft_top_m=3
    )
    await _feedback_after_a_fit(svc)
    # A retired item keeps its counts; the file keeps them too.
    assert (await svc.client.delete("/v1/items/x3")).status_code == 204
    # A served list caches the user's membership under the generation.
    await svc.client.post("/v1/recommend", json={"user_id": "xfan0", "k": 2})
    # Discounted counts and their times, as count discounting writes them.
    gen = int(await raw.hget("src:{clusters}", "gen"))
    await raw.hset(f"src:{{arms}}:imp:{gen}:1", "y0", "1234.5678")
    await raw.hset("src:{arms}:clk:global", "y0", "2.5")
    await raw.hset(f"src:{{arms}}:at:imp:{gen}:1", "y0", "1712345678.25")
    await raw.hset("src:{arms}:at:clk:global", "y0", "1712345679.5")
    await raw.set("src:{arms}:decay_since", "1712000000.125")
    await raw.hset("src:{arms}:stats", mapping={"served:a": 7})
    # The learned seen decay's evidence, as feedback on logged lists counts it.
    await raw.hset("src:{arms}:fatigue", mapping={"cimp:7": "3", "cexp:7": "0.4567", "cclk:0": 1})

    text = await _export(make_settings, "src", users=True)
    document = json.loads(text)
    assert document["retired"] == ["x3"]
    cluster_clicks = [a["clicks"] for a in document["arms"] if a["cluster"] is not None]
    assert any(0 < c < 1 for c in cluster_clicks)  # soft shares, in events
    y0 = [a for a in document["arms"] if a["item_id"] == "y0" and a["cluster"] == 1]
    assert y0[0]["impressions"] == 0.0012345678
    assert y0[0]["updated"] == {"impressions": 1712345678.25}
    assert document["seen_decay"] == {"cclk:0": 1, "cexp:7": 0.4567, "cimp:7": 3}

    assert await _import(make_settings, "dst", text) == 0
    source, copied = await _stored(raw, "src"), await _stored(raw, "dst")
    assert _comparable(copied) == _comparable(source)
    assert copied["u:{xfan0}:state"][b"assigned"].startswith(f"{gen + 1}:".encode())
    assert copied[f"{{arms}}:imp:{gen + 1}:1"][b"y0"] == b"1234.5678"
    # Counters land above the file's, so workers of the target reload.
    assert int(copied["{clusters}"][b"gen"]) == gen + 1
    assert int(copied["{arms}:version"]) > int(source["{arms}:version"])
    assert int(copied["{items}:info"][b"version"]) > int(source["{items}:info"][b"version"])
    assert "{arms}:changes" not in copied
    # Markers and users keep their remaining time to live.
    marker = next(name for name in source if name.startswith("{arms}:ev:"))
    ttl = await raw.pttl(f"src:{marker}") - await raw.pttl(f"dst:{marker}")
    assert abs(ttl) < 5000
    assert await raw.pttl("dst:u:{xfan0}:clicks") > 0


@anyio
async def test_round_trip_over_shards_keeps_every_sum(start, raw, make_settings):
    svc = await start(key_prefix="src", half_life_h=1.0)
    await _feedback_after_a_fit(svc)
    keys = svc.app.state.engine.store.keys
    # Every count is spread over several shards, as parts.
    parts = [await raw.hget(keys.arms("imp", shard=s), "x1") for s in range(keys.shards)]
    assert sum(part is not None for part in parts) > 1
    exported = await _export(make_settings, "src", users=True)
    assert await _import(make_settings, "dst", exported) == 0
    again = await _export(make_settings, "dst", users=True)
    first, second = json.loads(exported), json.loads(again)
    for document in (first, second):
        del document["exported_at"], document["versions"], document["settings"]
        document["clusters"]["gen"] = None  # an import numbers it above the file's
        document["dedupe"].sort()  # both in SCAN order
        document["users"].sort(key=lambda user: user["user_id"])
    # Users and markers are read a moment apart (on a cluster, by several servers'
    # clocks): their expiry times agree to within that moment.
    expiries = [[u.pop("expires_at") for u in d["users"]] for d in (first, second)]
    assert expiries[1] == pytest.approx(expiries[0], abs=5)
    marker_expiries = [[m.pop(1) for m in d["dedupe"]] for d in (first, second)]
    assert marker_expiries[1] == pytest.approx(marker_expiries[0], abs=5)
    assert second == first
    for name in ("imp", "clk"):
        for item, value in (await stored_counts(raw, keys, name)).items():
            assert value > 0 and item in {a["item_id"] for a in first["arms"]}
    # Each marker moved to the shard of its event, with its time to live.
    source = {key async for key in raw.scan_iter(match=Keys("src").every_marker)}
    copied = {key async for key in raw.scan_iter(match=Keys("dst").every_marker)}
    assert len(source) == len(first["dedupe"]) > 0
    assert {key[3:] for key in copied} == {key[3:] for key in source}


@anyio
async def test_export_without_users_leaves_them_out(svc, make_settings):
    await add_items(svc.client, ["a"])
    await send(svc.client, [event("click", "u1", "a")])
    document = json.loads(await _export(make_settings, "br"))
    assert "users" not in document
    assert document["arms"] == [
        {"item_id": "a", "cluster": None, "impressions": 0, "clicks": 1, "conversions": 0},
        {"item_id": "a", "cluster": 0, "impressions": 0, "clicks": 1, "conversions": 0},
    ]


@anyio
async def test_import_refuses_a_store_with_state_unless_replace(start, raw, make_settings, capsys):
    source = await start(key_prefix="src")
    await add_items(source.client, ["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    await send(source.client, [event("impression", "u1", "a"), event("click", "u1", "a")])
    text = await _export(make_settings, "src")

    target = await start(key_prefix="dst")
    await add_items(target.client, ["old"])
    await target.client.post("/v1/recommend", json={"user_id": "u9", "k": 1})
    await raw.set("other:{items}:info", "kept")
    before = await _stored(raw, "dst")
    assert await _import(make_settings, "dst", text) == 1
    assert "already holds 1 items" in capsys.readouterr().err
    assert await _stored(raw, "dst") == before

    assert await _import(make_settings, "dst", text, replace=True) == 0
    after = await _stored(raw, "dst")
    assert set(after["{items}:meta"]) == {b"a", b"b"}
    assert not [name for name in after if name.startswith("rec:")]  # every old key went
    assert await raw.get("other:{items}:info") == b"kept"  # other prefixes are untouched
    await target.refresh()
    assert (await arm(target.client, "a"))["global"]["clicks"] == 1


@anyio
async def test_acknowledged_events_stay_duplicates_after_a_move(start, make_settings):
    source = await start(key_prefix="src")
    await add_items(source.client, ["a"])
    click = event("click", "u1", "a")
    assert (await send(source.client, [click])).json() == {
        "accepted": 1,
        "duplicates": 0,
        "unknown_rec_ids": [],
    }
    text = await _export(make_settings, "src")

    target = await start(key_prefix="dst")
    assert await _import(make_settings, "dst", text) == 0
    await target.refresh()
    replay = await send(target.client, [click])
    assert replay.json() == {"accepted": 0, "duplicates": 1, "unknown_rec_ids": []}
    fresh = await send(target.client, [event("click", "u1", "a")])
    assert fresh.json() == {"accepted": 1, "duplicates": 0, "unknown_rec_ids": []}
    assert (await arm(target.client, "a"))["global"]["clicks"] == 2


@anyio
async def test_markers_keep_their_owner_through_a_move(start, make_settings):
    source = await start(key_prefix="src")
    await add_items(source.client, ["a", "b"])
    click = event("click", "u1", "a")
    assert (await send(source.client, [click])).json()["accepted"] == 1
    text = await _export(make_settings, "src")
    document = json.loads(text)
    assert document["format_version"] == 2
    assert [(e[0], e[2]) for e in document["dedupe"]] == [(click["event_id"], "u1")]

    target = await start(key_prefix="dst")
    assert await _import(make_settings, "dst", text) == 0
    # Still the owner's: its resend is a duplicate, another user's use of the id is refused.
    replay = await send(target.client, [click])
    assert replay.json() == {"accepted": 0, "duplicates": 1, "unknown_rec_ids": []}
    reused = await send(target.client, [{**click, "user_id": "u2", "item_id": "b"}])
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "event_id_conflict"
    moved = json.loads(await _export(make_settings, "dst"))["dedupe"]
    # The expiry is read back from the TTL against the server's clock: to within a moment.
    assert [(e[0], e[2]) for e in moved] == [(e[0], e[2]) for e in document["dedupe"]]
    assert [e[1] for e in moved] == pytest.approx([e[1] for e in document["dedupe"]], abs=0.05)


@anyio
async def test_a_version_1_file_is_read_and_its_markers_have_no_owner(svc, raw, make_settings):
    document = _document()  # format_version 1: [event_id, expires_at]
    assert await _import(make_settings, "br", json.dumps(document)) == 0
    assert await raw.get("br:{arms}:ev:ev-1") == b"1"  # what earlier releases wrote
    await svc.refresh()
    resend = await send(svc.client, [{**event("click", "anyone", "a"), "event_id": "ev-1"}])
    assert resend.json() == {"accepted": 0, "duplicates": 1, "unknown_rec_ids": []}
    exported = json.loads(await _export(make_settings, "br"))
    assert [(e[0], e[2]) for e in exported["dedupe"]] == [("ev-1", None)]


@anyio
async def test_seen_entries_of_earlier_releases_count_their_faded_count_rounded_up(
    svc, raw, make_settings
):
    """Earlier files hold [faded, when]: the plain unclicked count is then the faded one
    rounded up (at least 1), as the learned decay bucketed it; new files hold all three."""
    document = _document()
    now = round(document["exported_at"], 3)
    seen = {"a": [1.25, now], "b": [0.0001, now], "gone": [2.0, now, 5]}
    document["users"] = [_user(seen=seen)]
    assert await _import(make_settings, "br", json.dumps(document)) == 0
    stored = await raw.hgetall("br:u:{u1}:seen")
    assert stored == {
        b"a": encode_seen(1.25, now, 2).encode(),
        b"b": encode_seen(0.0001, now, 1).encode(),
        b"gone": encode_seen(2.0, now, 5).encode(),
    }
    (user,) = json.loads(await _export(make_settings, "br", users=True))["users"]
    assert user["seen"] == {
        "a": [1.25, pytest.approx(now), 2],
        "b": [0.0001, pytest.approx(now), 1],
        "gone": [2.0, pytest.approx(now), 5],
    }


@anyio
async def test_markers_of_events_counted_after_the_read_are_left_out(svc):
    await add_items(svc.client, ["a"])
    before = event("impression", "u1", "a")
    await send(svc.client, [before])
    store: Store = svc.app.state.engine.store
    snapshot = await store_state.read_state(store)
    await asyncio.sleep(0.01)
    await send(svc.client, [event("impression", "u1", "a")])
    retention = svc.app.state.settings.dedupe_retention_s
    batches = [b async for b in store_state.dedupe_markers(store, snapshot.at_ms, retention)]
    assert [event_id for batch in batches for event_id, *_ in batch] == [before["event_id"]]


@anyio
async def test_a_running_service_picks_up_an_import(start, make_settings):
    # The catalog prior: the affinity prior's slope is each worker's own fit from the counts
    # (refitted every affinity_refit_s), and arms are compared exactly below.
    source = await start(key_prefix="src", prior="catalog")
    await _feedback_after_a_fit(source)
    text = await _export(make_settings, "src")

    live = await start(key_prefix="live", prior="catalog")
    await add_items(live.client, ["old"])
    await send(live.client, [event("click", "u1", "old")])
    await live.refresh()
    assert await _import(make_settings, "live", text, replace=True) == 0
    # No explicit refresh: the background loop (every 50 ms here) must notice by itself.
    deadline = time.monotonic() + 3
    while live.recommender.snapshot.clusters.gen != 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    snap = live.recommender.snapshot
    assert snap.clusters.gen == 2 and snap.clusters.k == 2
    assert "old" not in snap.catalog.index and "x1" in snap.catalog.index
    listed = (await live.client.get("/v1/arms", params={"limit": 1000})).json()
    assert {a["item_id"] for a in listed["arms"]} == set(snap.catalog.item_ids)
    assert await arm(live.client, "x1") == await arm(source.client, "x1") | {"gen": 2}
    rec = await live.client.post("/v1/recommend", json={"user_id": "xfan0", "k": 3})
    assert {i["item_id"] for i in rec.json()["items"]} <= set(snap.catalog.item_ids)


# -- files that must be refused ------------------------------------------------------


def _document() -> dict[str, Any]:
    """A small valid state file written by hand."""
    now = time.time()
    return {
        "format": "banditrec-state",
        "format_version": 1,
        "exported_at": now,
        "banditrec_version": "test",
        "settings": {"key_prefix": "old", "prior": "catalog", "half_life_h": 0.0},
        "versions": {"items": 4, "arms": 9},
        "clusters": {
            "gen": 3,
            "k": 2,
            "centers": [[1.0, 0.0], [0.0, 1.0]],
            "inertia": 0.5,
            "sizes": [1, 1],
            "fitted_at": now,
        },
        "items": [
            {
                "item_id": "a",
                "tags": ["drama"],
                "pools": ["new"],
                "active": True,
                "updated": now,
                "embedding": [0.9, 0.1],
            },
            {
                "item_id": "b",
                "tags": [],
                "pools": [],
                "active": False,
                "updated": now,
                "embedding": [0.1, 0.9],
            },
        ],
        "retired": ["gone"],
        "arms": [
            {"item_id": "a", "cluster": None, "impressions": 3, "clicks": 1, "conversions": 0},
            {
                "item_id": "a",
                "cluster": 1,
                "impressions": 2.25,
                "clicks": 0.75,
                "conversions": 0,
                "updated": {"clicks": now},
            },
            {"item_id": "gone", "cluster": None, "impressions": 5, "clicks": 0, "conversions": 0},
        ],
        "dedupe": [["ev-1", now + 3600], ["ev-expired", now - 10]],
    }


def _user(**fields: Any) -> dict[str, Any]:
    """A user entry with nothing but `fields`."""
    empty = {"user_id": "u1", "hist": 0, "membership": None, "assigned": None, "clicks": [],
             "seen": {}, "last_clicks": {}, "events": [], "expires_at": None}  # fmt: skip
    return {**empty, **fields}


def _mutated(path: str, value: Any) -> dict[str, Any]:
    document = _document()
    *parents, last = path.split("/")
    target: Any = document
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return document


INVALID = [
    (_mutated("arms/1/clicks", -1), "arms[1].clicks"),
    (_mutated("arms/0/item_id", "nope"), "arms[0].item_id"),
    (_mutated("arms/1/cluster", 2), "arms[1].cluster"),
    (_mutated("items/1/embedding", [0.1, 0.2, 0.3]), "items[1].embedding"),
    (_mutated("items/0/item_id", "a b"), "items[0].item_id"),
    (_mutated("items/1/item_id", "a"), "items[1].item_id"),
    (_mutated("clusters/centers", [[1.0, 0.0]]), "clusters.centers"),
    (_mutated("clusters/centers/1", [1.0, 0.0, 0.0]), "clusters.centers[1]"),
    (_mutated("dedupe/0", ["ev-1"]), "dedupe[0][1]"),
    (_mutated("dedupe/1/0", "ev-1"), "dedupe[1][0]"),
    (_mutated("format_version", 3), "format_version"),
    (_mutated("users", [_user(seen={"a": [1.0, 1.0, 0]})]), "users[0].seen.a[2]"),
    (_mutated("users", [_user(seen={"a": [1.0]})]), "users[0].seen.a[1]"),
    (_mutated("arms/0/clickz", 1), "arms[0].clickz"),
]


@pytest.mark.parametrize(("document", "path"), INVALID, ids=[p for _, p in INVALID])
def test_invalid_files_name_the_offending_path(document, path):
    with pytest.raises(InvalidState) as raised:
        parse_document(json.dumps(document))
    assert path in [p for p, _ in raised.value.errors]


def test_non_numbers_and_non_json_are_refused():
    text = json.dumps(_document()).replace('"clicks": 1,', '"clicks": NaN,')
    with pytest.raises(InvalidState, match="NaN"):
        parse_document(text)
    with pytest.raises(InvalidState, match="not a banditrec state file"):
        parse_document("[]")
    with pytest.raises(InvalidState, match="not valid JSON"):
        parse_document('{"format": ')


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def cli(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the command at the test Redis under prefix 'cli', emptied first."""
    monkeypatch.setenv("BANDITREC_REDIS_URL", redis_url)
    monkeypatch.setenv("BANDITREC_KEY_PREFIX", "cli")

    async def flush() -> None:
        store = Store(redis_url)
        await store.flush()
        await store.close()

    asyncio.run(flush())
    return redis_url


def _snapshot_keys(redis_url: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        client = raw_client(redis_url)
        try:
            return await _stored(client, "cli")
        finally:
            await client.aclose()

    return asyncio.run(read())


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


def test_cli_imports_exports_and_refuses(cli, tmp_path, capsys, monkeypatch):
    handmade = _document()
    source = tmp_path / "state.json"
    source.write_text(json.dumps(handmade))
    assert main(["import", str(source)]) == 0
    assert "imported 2 items, 1 retired items" in capsys.readouterr().out
    stored = _snapshot_keys(cli)
    keys = Keys("")  # names without the prefix's "cli"; counts land in the first shard
    shard = keys.tag(0)
    assert stored[f"{{{shard}}}:imp:4:1"] == {b"a": b"2250000"}  # generation above the file's 3
    at = handmade["arms"][1]["updated"]["clicks"]
    assert float(stored[f"{{{shard}}}:at:clk:4:1"][b"a"]) == at
    assert keys.marker("ev-1")[1:] in stored and keys.marker("ev-expired")[1:] not in stored

    assert main(["export"]) == 0
    exported = capsys.readouterr().out
    document = json.loads(exported)
    assert document["clusters"]["gen"] == 4
    assert [a["clicks"] for a in document["arms"]] == [1, 0.75, 0]
    assert document["items"][0]["embedding"] == [0.9, 0.1]

    _stdin(monkeypatch, exported)
    assert main(["import", "-"]) == 1
    assert "already holds 2 items" in capsys.readouterr().err
    assert _snapshot_keys(cli) == stored

    _stdin(monkeypatch, exported)
    assert main(["import", "-", "--replace"]) == 0
    assert main(["export", "-o", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["clusters"]["gen"] == 5 and again["arms"] == document["arms"]
    assert not list(tmp_path.glob("*.partial"))


def test_cli_refuses_an_invalid_file_and_writes_nothing(cli, tmp_path, capsys):
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(_document()))
    assert main(["import", str(valid)]) == 0
    before = _snapshot_keys(cli)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(_mutated("arms/2/impressions", -5)))
    assert main(["import", str(broken), "--replace"]) == 2
    err = capsys.readouterr().err
    assert "not a valid state file" in err and "arms[2].impressions" in err
    assert _snapshot_keys(cli) == before
    assert main(["import", str(tmp_path / "missing.json")]) == 2


def test_commands_share_a_serving_embedded_redis_or_start_their_own(tmp_path):
    settings = Settings(redis_url=None, data_dir=tmp_path)
    socket_url = f"unix://{EmbeddedRedis(tmp_path).socket_path}"
    with redis_for_command(settings) as url:  # nobody serves the folder: start one
        assert url == socket_url
        assert asyncio.run(_ping(url))
    assert not asyncio.run(_ping(url))  # and stopped it
    with EmbeddedRedis(tmp_path) as serving, redis_for_command(settings) as url:
        assert url == socket_url  # the folder is locked by `serve`: use its server
        assert serving.running and asyncio.run(_ping(url))


async def _ping(url: str) -> bool:
    store = Store(url, timeout_s=0.5)
    try:
        return await store.ping()
    except StoreUnavailable:
        return False
    finally:
        await store.close()


def test_export_names_its_store_and_refuses_an_empty_one(cli, tmp_path, capsys, monkeypatch):
    assert main(["export", "-o", str(tmp_path / "state.json")]) == 1
    err = capsys.readouterr().err
    assert f"reading {cli}, key prefix 'cli'" in err
    assert "holds no items, counts or clustering" in err and "nothing was exported" in err
    assert "BANDITREC_DATA_DIR" in err and "--allow-empty" in err
    assert not list(tmp_path.iterdir())  # neither the file nor a partial one

    assert main(["export", "--allow-empty"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == []

    monkeypatch.setattr("service.progress.LINE_EVERY_S", 0.0)
    source = tmp_path / "valid.json"
    source.write_text(json.dumps(_document()))
    assert main(["import", str(source)]) == 0
    assert f"writing to {cli}, key prefix 'cli'" in capsys.readouterr().err
    assert main(["export"]) == 0
    assert "banditrec export: writing: 2 entries" in capsys.readouterr().err  # progress lines


def test_export_from_a_folder_without_data_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BANDITREC_REDIS_URL", raising=False)
    monkeypatch.delenv("BANDITREC_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["export"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"the embedded Redis of {tmp_path / 'data'}, key prefix 'br'" in captured.err
    assert "BANDITREC_DATA_DIR" in captured.err and "--allow-empty" in captured.err
    assert not (tmp_path / "data").exists()  # no empty Redis started there


def test_a_store_description_hides_the_password():
    described = store_description(Settings(redis_url="redis://admin:s3cret@cache:6380/2"))
    assert described == "redis://admin:***@cache:6380/2, key prefix 'br'"
    assert store_description(Settings(redis_url="unix:///run/r.sock")).startswith("unix:///run")


def test_import_tells_a_terminal_its_steps(cli, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    source = tmp_path / "state.json"
    source.write_text(json.dumps(_document()))
    assert main(["import", str(source)]) == 0
    shown = terminal.getvalue()
    assert "banditrec import: read 0.0 MB from" in shown
    assert "banditrec import: validated 2 items" in shown and "writing in one transaction" in shown


@anyio
async def test_an_import_cut_off_by_redis_says_it_may_have_been_applied(make_settings, capsys):
    # The import is one transaction: a Redis that fails to answer may still have run it,
    # so the message must not claim that nothing was written.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_s=0.5)
    document = parse_document(json.dumps(_document()))
    assert await import_document(settings.redis_url, settings, document, replace=False) == 1
    err = capsys.readouterr().err
    assert "applied in full or not at all" in err
    assert "nothing was written" not in err
