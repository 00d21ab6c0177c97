"""One dedupe decision per event_id for everything an event touches: counts and user state."""

from __future__ import annotations

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from service.store import dedupe, serving
from service.store.keys import Keys
from service.store.records import ArmEvent, UserEvent
from tests.service.helpers import add_items, arm, event, exported_lists, raw_client, send

pytestmark = pytest.mark.anyio


@pytest.fixture
async def raw(redis_url: str):
    client = raw_client(redis_url)
    yield client
    await client.aclose()


async def _user(running, user_id: str) -> dict:
    body: dict = (await running.client.get(f"/v1/users/{user_id}")).json()
    return body


def _seen(user: dict) -> dict[str, float]:
    return {s["item_id"]: round(s["unclicked"], 3) for s in user["seen"]}


def _conflict(response, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("event_id_conflict", field)


async def test_an_event_id_reused_by_another_user_is_refused(svc):
    # Issue 12, D3: it was a duplicate for the counts but changed the other user's state.
    await add_items(svc.client, ["a", "b"])
    first = event("impression", "1", "a")  # a user named "1", as old markers' value
    assert (await send(svc.client, [first])).json()["accepted"] == 1
    reused = {**first, "user_id": "u2", "type": "click", "item_id": "b"}
    fresh = event("impression", "u2", "a")
    _conflict(await send(svc.client, [fresh, reused]), "events[1].event_id")
    # Nothing of the refused batch was written, to either user or to the counts.
    u2 = await _user(svc, "u2")
    assert (u2["recent_clicks"], u2["seen"]) == ([], [])
    assert (await arm(svc.client, "b"))["global"]["clicks"] == 0
    assert (await arm(svc.client, "a"))["global"]["impressions"] == 1
    assert (await send(svc.client, [fresh])).json()["accepted"] == 1  # still fresh
    # The owner's own resend is a duplicate, as before, and changes nothing.
    assert (await send(svc.client, [first])).json() == {
        "accepted": 0,
        "duplicates": 1,
        "unknown_rec_ids": [],
    }
    assert _seen(await _user(svc, "1")) == {"a": 1.0}


async def test_an_event_id_used_by_two_users_in_one_batch_is_refused(svc):
    await add_items(svc.client, ["a", "b"])
    shared = event("impression", "u1", "a")
    batch = [shared, event("click", "u1", "a"), {**shared, "user_id": "u2", "item_id": "b"}]
    _conflict(await send(svc.client, batch), "events[2].event_id")
    assert (await arm(svc.client, "a"))["global"]["impressions"] == 0
    assert (await _user(svc, "u1"))["recent_clicks"] == []


async def test_a_repeated_event_id_applies_only_the_event_that_counted(svc):
    # The counts took the first of the two; the user side used to take the impression.
    await add_items(svc.client, ["a", "b"])
    click = event("click", "u1", "a")
    batch = [click, {**click, "type": "impression", "item_id": "b"}]
    assert (await send(svc.client, batch)).json() == {
        "accepted": 1,
        "duplicates": 1,
        "unknown_rec_ids": [],
    }
    assert (await arm(svc.client, "a"))["global"]["clicks"] == 1
    assert (await arm(svc.client, "b"))["global"]["impressions"] == 0
    user = await _user(svc, "u1")
    assert user["recent_clicks"] == ["a"] and _seen(user) == {}


async def test_markers_without_an_owner_are_duplicates_that_touch_nothing(svc, raw):
    # Earlier releases (and state files without owners) stored "1" in every marker.
    await add_items(svc.client, ["a"])
    old = event("click", "u1", "a")
    marker = svc.app.state.engine.store.keys.marker(old["event_id"])
    await raw.set(marker, "1", ex=3600)
    assert (await send(svc.client, [old])).json() == {
        "accepted": 0,
        "duplicates": 1,
        "unknown_rec_ids": [],
    }
    assert (await arm(svc.client, "a"))["global"]["clicks"] == 0
    assert (await _user(svc, "u1"))["recent_clicks"] == []


class _CrashAfter:
    """run_scripts that dies (the connection drops) once the first `calls` user scripts ran.

    Round trip 1 (the counts script) goes through; round trip 2 runs only its first
    `calls` scripts and no outcome flags, then raises as a lost connection would.
    """

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.trips = 0
        self.crashed = False

    async def __call__(self, client, calls, commands=(), **wait):
        self.trips += 1
        if self.trips == 2 and not self.crashed:
            self.crashed = True
            await _real_run_scripts(client, calls[: self.calls], **wait)
            raise RedisConnectionError("connection lost between the two round trips")
        return await _real_run_scripts(client, calls, commands, **wait)


_real_run_scripts = serving.run_scripts


@pytest.mark.parametrize("user_scripts_run", [0, 1])
async def test_a_crash_between_counts_and_user_state_is_repaired_by_the_resend(
    svc, monkeypatch, user_scripts_run
):
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 2})).json()
    batch = [
        event("impression", "u1", "a", rec["rec_id"]),
        event("click", "u1", "a", rec["rec_id"]),
        event("impression", "u1", "b", rec["rec_id"]),
        event("impression", "u2", "a"),
        event("click", "u2", "b"),
    ]
    crash = _CrashAfter(user_scripts_run)
    monkeypatch.setattr(serving, "run_scripts", crash)
    down = await send(svc.client, batch)
    assert down.status_code == 503, down.text
    assert crash.crashed
    # The counts landed with the first round trip; the resend counts nothing twice ...
    assert (await send(svc.client, batch)).json() == {
        "accepted": 0,
        "duplicates": 5,
        "unknown_rec_ids": [],
    }
    a, b = await arm(svc.client, "a"), await arm(svc.client, "b")
    assert (a["global"]["impressions"], a["global"]["clicks"]) == (2, 1)
    assert (b["global"]["impressions"], b["global"]["clicks"]) == (1, 1)
    # ... and applies each user's share exactly once, whichever user scripts had run.
    for _ in range(2):
        u1, u2 = await _user(svc, "u1"), await _user(svc, "u2")
        assert (u1["recent_clicks"], _seen(u1)) == (["a"], {"b": 1.0})
        assert (u2["recent_clicks"], _seen(u2)) == (["b"], {"a": 1.0})
        assert (await send(svc.client, batch)).json()["duplicates"] == 5
    # The outcome flags were set by the resend.
    (line,) = exported_lists((await svc.client.get("/v1/admin/logs/export")).text)
    flags = {i["item_id"]: (i["impression"], i["click"]) for i in line["items"]}
    assert flags == {"a": (True, True), "b": (True, False)}


def _same_slot_users() -> tuple[str, str, str]:
    """Return two user ids whose keys share a Redis Cluster slot, and one in another slot."""
    first = "u1"
    slot = key_slot(first.encode())
    second = next(f"u{n}" for n in range(2, 10**6) if key_slot(f"u{n}".encode()) == slot)
    apart = next(f"u{n}" for n in range(2, 10**6) if key_slot(f"u{n}".encode()) != slot)
    return first, second, apart


async def test_users_sharing_a_script_call_each_get_only_their_own_events(svc):
    # One record_user.lua call takes many users (a batch on one Redis, a slot's on a
    # cluster, where this runs again): each user's events, clicks and TTLs stay theirs.
    await add_items(svc.client, ["a", "b", "c"])
    first, second, apart = _same_slot_users()
    batch = [
        event("impression", first, "a"),
        event("impression", second, "b"),
        event("impression", apart, "c"),
        event("impression", first, "b"),
        event("click", second, "b"),
    ]
    assert (await send(svc.client, batch)).json()["accepted"] == 5
    users = {u: await _user(svc, u) for u in (first, second, apart)}
    assert _seen(users[first]) == {"a": 1.0, "b": 1.0}
    assert (_seen(users[second]), users[second]["recent_clicks"]) == ({}, ["b"])
    assert (_seen(users[apart]), users[apart]["recent_clicks"]) == ({"c": 1.0}, [])
    # A resend changes nobody: each user's own set of applied ids skips them.
    assert (await send(svc.client, batch)).json()["duplicates"] == 5
    assert _seen(await _user(svc, first)) == {"a": 1.0, "b": 1.0}


def test_record_user_calls_group_users_by_slot_only_on_a_cluster():
    keys = Keys("br")
    first, second, apart = _same_slot_users()
    user_events = {
        u: [UserEvent(event_id=f"e-{u}", kind="impression", item_id="a", rec_id=None, at=None)]
        for u in (first, second, apart)
    }
    applied = [
        ArmEvent(event_id=f"e-{u}", user_id=u, kind="imp", item_id="a", gen=0, shares=())
        for u in user_events
    ]

    def grouped(cluster: bool) -> list[list[str]]:
        calls = dedupe.user_calls(keys, None, user_events, applied, [], 0.0, cluster=cluster)
        return [call_keys[::5] for _, call_keys, _ in calls]  # each user's first key

    state = [keys.user(u, "state") for u in (first, second, apart)]
    assert grouped(cluster=False) == [state]
    assert sorted(grouped(cluster=True)) == sorted([state[:2], state[2:]])
