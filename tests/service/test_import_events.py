"""banditrec import-events: a platform's past counted once each, as live feedback counts it."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from cli import main
from service.events_file import FIELDS, BadFile, BadLine, detect_format, read_events
from service.events_import import import_events
from service.store import Store
from service.store.codecs import KINDS, item_meta
from service.store.keys import Keys
from tests.service.helpers import CLUSTER_URLS, add_items, raw_client, send, stored_counts

pytestmark = pytest.mark.anyio
HOUR = 3600.0
# Older than the dedupe retention (7 days): live feedback would refuse these ts.
PAST = time.time() - 20 * 86400


@pytest.fixture
async def raw(redis_url: str):
    client = raw_client(redis_url)
    yield client
    await client.aclose()


def _ev(n: int | str, kind: str, user: str, item: str, ts: Any, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"h{n}", "type": kind, "user_id": user, "item_id": item, "ts": ts, **extra}


def _ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _csv(path: Path, events: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(events)
    return path


async def _catalog(redis_url: str, prefix: str, ids: list[str]) -> None:
    store = Store(redis_url, prefix, cluster=redis_url in CLUSTER_URLS)
    await store.upsert_items([(i, item_meta([], [], True, 0.0), None) for i in ids])
    await store.close()


async def _import(
    make_settings, path: Path, *, prefix: str = "br", skip_bad: bool = False, batch: int = 1000
) -> tuple[int, str, str]:
    settings = make_settings(key_prefix=prefix)
    out, err = io.StringIO(), io.StringIO()
    code = await import_events(
        settings.redis_url,
        settings,
        path,
        detect_format(path),
        skip_bad=skip_bad,
        out=out,
        err=err,
        batch_events=batch,
    )
    return code, out.getvalue(), err.getvalue()


async def _counts(client: redis.Redis, prefix: str) -> dict[str, dict[str, float]]:
    """Return the global and cluster-0 (generation 0) count rows, summed over shards."""
    keys = Keys(prefix)
    rows = {}
    for kind in KINDS:
        rows[f"{kind}:global"] = await stored_counts(client, keys, kind)
        rows[f"{kind}:0"] = await stored_counts(client, keys, kind, 0, 0)
    return rows


async def _user(client: redis.Redis, prefix: str, user_id: str) -> dict[str, Any]:
    """Return a user's state as stored, without the dedupe set (its times are when recorded)."""
    keys = Keys(prefix).user_keys(user_id)
    return {
        "hist": await client.hget(keys.state, "hist"),
        "clicks": await client.lrange(keys.clicks, 0, -1),
        "seen": await client.hgetall(keys.seen),
        "last_clicks": await client.hgetall(keys.last_clicks),
    }


async def _markers(client: redis.Redis, prefix: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=Keys(prefix).every_marker)]


# -- exactly once --------------------------------------------------------------------------


async def test_a_rerun_counts_nothing_twice(flushed, redis_url, raw, make_settings, tmp_path):
    await _catalog(redis_url, "br", ["a", "b"])
    events = [_ev(n, "impression", f"u{n % 3}", "ab"[n % 2], PAST + n) for n in range(10)]
    events += [_ev(10, "click", "u0", "a", PAST + 20), _ev(11, "conversion", "u0", "a", PAST + 30)]
    events.append(_ev(3, "impression", "u0", "b", PAST + 40))  # a replay within the file
    path = _ndjson(tmp_path / "past.ndjson", events)

    code, out, err = await _import(make_settings, path, batch=4)
    assert code == 0, err
    assert "13 events: 12 counted, 1 duplicates" in out
    first_day = time.strftime("%Y-%m-%d", time.gmtime(PAST))
    assert f"13 valid events from {first_day}" in err
    assert "a rerun until" in out and "BANDITREC_DEDUPE_RETENTION_S" in out
    counted = await _counts(raw, "br")
    assert counted["imp:global"] == {"a": 5, "b": 5}
    assert counted["clk:global"] == {"a": 1} and counted["cnv:global"] == {"a": 1}
    users = {u: await _user(raw, "br", u) for u in ("u0", "u1", "u2")}

    code, out, _ = await _import(make_settings, path, batch=5)
    assert code == 0
    assert "13 events: 0 counted, 13 duplicates" in out and "a rerun until" not in out
    assert await _counts(raw, "br") == counted
    assert {u: await _user(raw, "br", u) for u in users} == users
    # Markers expire the retention after the import, not after the events' ts.
    (marker, *_) = await _markers(raw, "br")
    assert 7 * 86400 - 60 < await raw.ttl(marker) <= 7 * 86400


# -- the same state as live feedback at those times ----------------------------------------

_TIMELINE = [
    # (hours after PAST, events as (type, user, item)), each group one live batch.
    (0, [("impression", "u1", "a"), ("impression", "u1", "b"), ("impression", "u2", "a")]),
    (1, [("impression", "u1", "a")]),
    (2, [("click", "u1", "a")]),
    (3, [("impression", "u1", "a"), ("impression", "u1", "c")]),
    (30, [("impression", "u1", "b"), ("click", "u2", "b"), ("click", "u2", "c")]),
    (31, [("conversion", "u2", "b"), ("impression", "u2", "a")]),
    (40, [("click", "u1", "c")]),
    (50, [("impression", "u1", "b"), ("click", "u1", "b")]),  # seen, then clicked at once
    (55, [("impression", "u2", "c"), ("impression", "u2", "c")]),
]


@pytest.mark.parametrize("batch", [1000, 2])
async def test_users_end_as_live_feedback_at_those_times_leaves_them(
    start, redis_url, raw, make_settings, tmp_path, batch
):
    live = await start(key_prefix="live")
    await add_items(live.client, ["a", "b", "c"])
    await _catalog(redis_url, "imp", ["a", "b", "c"])
    numbered = [
        (n, hours, *event)
        for n, (hours, event) in enumerate((h, e) for h, group in _TIMELINE for e in group)
    ]
    for hours, _ in _TIMELINE:
        at = PAST + hours * HOUR
        live.recommender.clock = lambda at=at: at
        batch_events = [
            {"event_id": f"h{n}", "type": kind, "user_id": user, "item_id": item}
            for n, h, kind, user, item in numbered
            if h == hours
        ]
        assert (await send(live.client, batch_events)).status_code == 200
    events = [_ev(n, kind, user, item, PAST + h * HOUR) for n, h, kind, user, item in numbered]
    path = _ndjson(tmp_path / "past.ndjson", events)
    code, _, err = await _import(make_settings, path, prefix="imp", batch=batch)
    assert code == 0, err

    for user in ("u1", "u2"):
        imported = await _user(raw, "imp", user)
        assert imported == await _user(raw, "live", user)
        assert imported["seen"]  # the comparison is not between two empty states
    assert await _counts(raw, "imp") == await _counts(raw, "live")


async def test_click_history_follows_the_events_times(
    flushed, redis_url, raw, make_settings, tmp_path
):
    await _catalog(redis_url, "br", list("abcdef"))
    order = list("abcdef")
    events = [_ev(n, "click", "u", item, PAST + n * HOUR) for n, item in enumerate(order)]
    shuffled = events[:3][::-1] + events[3:][::-1]  # each batch of 3 out of order
    code, _, err = await _import(make_settings, _ndjson(tmp_path / "c.ndjson", shuffled), batch=3)
    assert code == 0, err
    stored = await _user(raw, "br", "u")
    assert stored["clicks"] == [i.encode() for i in reversed(order)]  # newest first
    assert stored["hist"] == b"6"
    last = PAST + 5 * HOUR
    assert stored["last_clicks"][b"f"] == f"{last:.3f}|".encode()


# -- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("write", [_ndjson, _csv])
async def test_csv_and_ndjson_with_unix_or_iso_times_count_alike(
    flushed, redis_url, raw, make_settings, tmp_path, write
):
    await _catalog(redis_url, "br", ["a", "b"])
    events = [
        _ev(1, "impression", "u1", "a", "2024-05-01T12:00:00Z"),
        _ev(2, "impression", "u1", "b", 1714564800 + 60),
        _ev(3, "click", "u1", "b", "2024-05-01T14:01:00+02:00", rec_id="ext-1"),
    ]
    suffix = ".csv" if write is _csv else ".ndjson"
    code, out, err = await _import(make_settings, write(tmp_path / f"past{suffix}", events))
    assert code == 0, err
    assert "3 events: 3 counted, 0 duplicates; 1 rec_ids naming no logged list" in out
    stored = await _user(raw, "br", "u1")
    assert stored["seen"] == {b"a": b"1.000000|1714564800.000|1"}
    assert stored["last_clicks"] == {b"b": b"1714564860.000|ext-1"}


def test_lines_are_read_as_events_or_named_problems(tmp_path):
    path = tmp_path / "mixed.ndjson"
    path.write_text(
        json.dumps(_ev(1, "click", "u", "a", 5)) + "\n\n"
        '{"event_id": "e2", "type": "klick", "user_id": "u", "ts": "yesterday", "x": 1}\n'
        "[1, 2]\n{broken\n"
    )
    read = list(read_events(path, "ndjson"))
    assert [str(r) for r in read[1:]] == [
        "line 3: type: Input should be 'impression', 'click' or 'conversion'",
        "line 3: item_id: required",
        "line 3: ts: not a number or ISO-8601 time",
        "line 3: x: unknown field; the fields are event_id, type, user_id, item_id, ts, rec_id",
        "line 4: not a JSON object",
        "line 5: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
    ]
    assert read[0].line == 1 and not isinstance(read[0], BadLine)


def test_csv_quirks_header_bom_quotes_and_gzip(tmp_path):
    text = (
        "\ufeffevent_id,type,user_id,item_id,ts,rec_id\r\n"
        'e1,click,u,"a",7,\r\n'
        'e2,click,u,"multi\nline",8,\r\n'
        "e3,click,u\r\n"
    )
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert detect_format(path) == "csv"
    read = list(read_events(path, "csv"))
    assert read[0].line == 2 and read[0].event.rec_id is None  # type: ignore[union-attr]
    assert str(read[1]).startswith("line 3: item_id: String should match pattern")
    assert str(read[2]) == "line 5: 3 cells, the header has 6"
    bad_header = tmp_path / "h.csv"
    bad_header.write_text("event_id,kind,user_id,item_id\n")
    with pytest.raises(BadFile, match="unknown column 'kind'; no 'type' column; no 'ts' column"):
        list(read_events(bad_header, "csv"))


# -- bad lines, refusals -------------------------------------------------------------------


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
    asyncio.run(_catalog(redis_url, "cli", ["a", "b"]))
    return redis_url


def _cli_counts(redis_url: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        client = redis.Redis.from_url(redis_url)
        try:
            return {**await _counts(client, "cli"), "markers": await _markers(client, "cli")}
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_a_file_with_bad_lines_is_refused_whole_unless_skip_bad(cli, tmp_path, capsys):
    now = time.time()
    events = [
        _ev(1, "impression", "u", "a", PAST),
        _ev(2, "impression", "u", "a", "not a time"),
        _ev(3, "click", "u", "zzz", PAST),
        _ev(4, "click", "u", "b", now + 3600),
        _ev(5, "click", "u", "b", now),
    ]
    path = _ndjson(tmp_path / "past.ndjson", events)
    assert main(["import-events", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"writing to {cli}, key prefix 'cli'" in err
    assert "3 bad lines, refusing the file; nothing was written" in err
    assert "line 2: ts: not a number or ISO-8601 time" in err
    assert "line 3: item_id: item 'zzz' is not in the catalog" in err
    assert "line 4: ts: " in err and "s in the future" in err
    assert "--skip-bad" in err
    empty = _cli_counts(cli)
    assert not any(empty.values())

    assert main(["import-events", str(path), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "2 events: 2 counted, 0 duplicates; 3 bad lines skipped" in captured.out
    assert "line 3: item_id" in captured.err
    counted = _cli_counts(cli)
    assert counted["imp:global"] == {"a": 1} and counted["clk:global"] == {"b": 1}


async def test_an_event_feedback_refuses_stops_the_import_at_its_line(
    svc, make_settings, raw, tmp_path
):
    await add_items(svc.client, ["a", "b"])
    served = await svc.client.post("/v1/recommend", json={"user_id": "owner", "k": 2})
    rec_id = served.json()["rec_id"]
    events = [_ev(n, "impression", "u", "a", PAST + n) for n in range(4)]
    events.insert(2, _ev("x", "click", "thief", "a", PAST + 2, rec_id=rec_id))
    path = _ndjson(tmp_path / "past.ndjson", events)

    code, _, err = await _import(make_settings, path, batch=2)
    assert code == 1
    assert f"line 3: user_id: rec {rec_id} was served to another user" in err
    assert "stopped at line 3: 2 events: 2 counted" in err
    assert (await _counts(raw, "br"))["imp:global"] == {"a": 2.0}  # the batches before it

    code, out, err = await _import(make_settings, path, batch=2, skip_bad=True)
    assert code == 0
    assert "4 events: 2 counted, 2 duplicates; 1 bad line skipped" in out
    assert "skipped line 3: user_id" in err
    assert (await _counts(raw, "br"))["imp:global"] == {"a": 4.0}


async def test_an_empty_catalog_is_named_and_nothing_written(flushed, raw, make_settings, tmp_path):
    path = _ndjson(tmp_path / "past.ndjson", [_ev(1, "click", "u", "a", PAST)])
    code, _, err = await _import(make_settings, path)
    assert code == 1
    assert "the catalog is empty under key prefix 'br'" in err and "BANDITREC_DATA_DIR" in err
    assert not await _markers(raw, "br")


def test_a_folder_without_data_is_named_and_not_created(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BANDITREC_REDIS_URL", raising=False)
    monkeypatch.delenv("BANDITREC_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    path = _ndjson(tmp_path / "past.ndjson", [_ev(1, "click", "u", "a", PAST)])
    assert main(["import-events", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"the embedded Redis of {tmp_path / 'data'}" in err and "BANDITREC_DATA_DIR" in err
    assert not (tmp_path / "data").exists()


# -- safe next to a live service -----------------------------------------------------------


async def test_an_import_next_to_live_feedback_loses_and_doubles_nothing(
    start, redis_url, make_settings, raw, tmp_path
):
    svc = await start()
    items = [f"i{n}" for n in range(10)]
    users = [f"u{n}" for n in range(8)]
    await add_items(svc.client, items)
    rng = random.Random(7)

    def events(prefix: str, n: int, ts: float | None) -> list[dict[str, Any]]:
        made = []
        for k in range(n):
            kind = rng.choice(["impression", "impression", "click"])
            made.append(
                {
                    "event_id": f"{prefix}{k}",
                    "type": kind,
                    "user_id": rng.choice(users),
                    "item_id": rng.choice(items),
                    **({} if ts is None else {"ts": ts + k}),
                }
            )
        return made

    past = events("p", 1500, PAST)
    live = events("l", 600, None)
    path = _ndjson(tmp_path / "past.ndjson", past)

    async def feed_live() -> None:
        for n in range(0, len(live), 20):
            assert (await send(svc.client, live[n : n + 20])).status_code == 200
            await asyncio.sleep(0)

    # The import runs in its own thread and event loop, as the command would in its process.
    imported, _ = await asyncio.gather(
        asyncio.to_thread(lambda: asyncio.run(_import(make_settings, path, batch=50))),
        feed_live(),
    )
    assert imported[0] == 0, imported[2]
    everything = past + live
    counts = await _counts(raw, "br")
    for kind, name in (("impression", "imp"), ("click", "clk")):
        expected: dict[str, int] = {}
        for e in everything:
            if e["type"] == kind:
                expected[e["item_id"]] = expected.get(e["item_id"], 0) + 1
        assert {i: int(v) for i, v in counts[f"{name}:global"].items()} == expected
    for user in users:
        clicks = sum(1 for e in everything if e["user_id"] == user and e["type"] == "click")
        stored = await _user(raw, "br", user)
        assert int(stored["hist"] or 0) == clicks
        mine = {e["event_id"] for e in everything if e["user_id"] == user}
        recorded = await raw.zrange(Keys("br").user(user, "events"), 0, -1)
        assert {e.decode() for e in recorded} == mine

    code, out, _ = await _import(make_settings, path, batch=50)
    assert code == 0 and "1500 events: 0 counted, 1500 duplicates" in out
    assert await _counts(raw, "br") == counts
