"""One dedupe decision per event_id, for the counts and the user state an event touches.

The counts (in the slot of the event's count shard, keys.shard_of) and a user's state
(slot {USER}) cannot share a script in Redis Cluster, so a batch is written in two round
trips (three when its events fall in more than one count shard):

0. With events in several shards, their markers are read first (one pipeline) and
   decided as the script would (`decided`): with any CLAIMED event nothing is written.
1. One record_counts.lua per shard (one pipeline; per node on a cluster) decides every
   event from its dedupe marker, whose value is the event's owner (the user it counted
   for): NEW (counted now, the marker names this user), REPLAY (this user's, counted
   before), UNOWNED (a marker without an owner, from an earlier release or a file without
   owners) or CLAIMED (another user's). With any CLAIMED event it writes nothing (in its
   shard) and the batch is refused.
2. Only the first occurrence of each NEW or REPLAY event goes on to record_user.lua
   (one call for many users: a batch's users on one Redis, each slot's on a cluster),
   which keeps a set of applied event_ids per user and skips what that user already
   applied; the outcome flags of those events (idempotent HSETs) go with it.

Why every crash ends exactly once, as long as the client resends a batch it was not
answered 200 for (a 503 says to):

- Before or during the counts script: a script is atomic (and one AOF entry), so either
  nothing was written or markers and counts were written together.
- After the counts, before or during the user round trip (the worker dies, Redis times
  out, the connection drops): markers name the owner, so the resent events come back as
  REPLAY and reach the user scripts again; a user script that ran skips them by its own
  set, one that did not applies them now. Counts are not touched twice.
- After both, before the answer: the resend is all REPLAY, every user script skips.
- An event_id reused by another user is CLAIMED before anything is written, so neither
  user's state changes; inside one batch the engine refuses it before any write.
- The narrow race the pre-check leaves: another batch claims one of this batch's
  event_ids for another user between the pre-check and the scripts. That shard's script
  still refuses it (nothing of that shard is written), but the other shards' events of
  this batch are counted and their markers set; the batch is answered 422. Resending
  the batch without the claimed event then finds them as REPLAY and applies only the
  user side: counts stay exact; only a client that drops the batch instead loses the
  user-side effects of those events.
- An UNOWNED marker cannot tell whose event it was, so its replays touch nothing: earlier
  releases wrote both sides in one pipeline, so the owner's state was written with it.
- A marker expires after the retention; the user's set forgets an id by the same clock
  (its score is when the user script ran, a moment after the marker was set), so a
  resend that late is new to both sides, give or take that moment.
- Markers written under another shard layout (a release before sharding, or another
  BANDITREC_COUNT_SHARDS) are elsewhere: for one retention after the layout changed,
  feedback reads them too (store/layout.py) and an event found there is decided by it,
  never counted again (its new marker is not written; every resend finds the old one).
- What is not covered: the user's set also keeps only the newest
  `BANDITREC_USER_EVENTS_MAX` ids (at least one batch), so resending an older batch of a
  user with more events than that within the retention re-applies the forgotten events
  to that user's seen decay and history (never to the counts).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.crc import key_slot

from service.store.codecs import EVENT_KINDS, UNKNOWN_OWNER, encode_owner, text
from service.store.connection import Client, ScriptCall
from service.store.keys import CHANGES_RETENTION_S, Keys
from service.store.records import ArmEvent, UserEvent, Verdict

# Users per record_user.lua call on one Redis: a batch of 100 users is one call, and a
# huge import batch still yields Redis to other clients between calls.
USERS_PER_CALL = 200
# The verdicts whose events go on to the user side.
_APPLIED = (Verdict.NEW, Verdict.REPLAY)


def count_calls(
    keys: Keys,
    script: AsyncScript,
    arm_events: Sequence[ArmEvent],
    *,
    now: float,
    retention_s: int,
    count_half_life_s: float,
) -> tuple[list[ScriptCall], list[list[int]]]:
    """Return one record_counts.lua call per count shard the batch touches, and the
    positions in `arm_events` of the events each call decides, in order."""
    groups: dict[int, list[int]] = {}
    for n, arm_event in enumerate(arm_events):
        groups.setdefault(keys.shard_of(arm_event.event_id), []).append(n)
    calls = []
    for shard, positions in groups.items():
        shard_events = [arm_events[n] for n in positions]
        calls.append(
            _count_call(keys, shard, script, shard_events, now, retention_s, count_half_life_s)
        )
    return calls, list(groups.values())


def _count_call(
    keys: Keys,
    shard: int,
    script: AsyncScript,
    arm_events: Sequence[ArmEvent],
    now: float,
    retention_s: int,
    count_half_life_s: float,
) -> ScriptCall:
    """Return the record_counts.lua call that decides and counts one shard's events."""
    count_keys = [
        keys.arms_version(shard),
        keys.changes(shard),
        keys.stats(shard),
        keys.decay_since(shard),
        keys.fatigue(shard),
    ]
    # Stream ids come from the Redis clock, so trim by wall time, not the events' `now`.
    oldest_ms = int((time.time() - CHANGES_RETENTION_S) * 1000)
    args: list[Any] = [retention_s, f"{oldest_ms}-0", repr(now), count_half_life_s]
    discounting = count_half_life_s > 0
    for arm_event in arm_events:
        kind = EVENT_KINDS[arm_event.kind]
        count_keys.append(keys.marker(arm_event.event_id))
        for g, c in [(None, None), *((arm_event.gen, c) for c, _ in arm_event.shares)]:
            count_keys.append(keys.arms(kind, g, c, shard=shard))
            if discounting:
                count_keys.append(keys.arm_times(kind, g, c, shard=shard))
        args += [arm_event.item_id, arm_event.gen, kind, encode_owner(arm_event.user_id)]
        args += [len(arm_event.shares), len(arm_event.stats)]
        args += [x for share in arm_event.shares for x in share]
        args += arm_event.stats
        args += [len(arm_event.fatigue), *(x for pair in arm_event.fatigue for x in pair)]
    return script, count_keys, args


def merged(
    n_events: int,
    groups: Sequence[Sequence[int]],
    replies: Sequence[Any],
    checked: Sequence[Verdict] = (),
) -> list[Verdict]:
    """Return the verdicts of every event, in batch order, from each shard's reply; events
    no script decided keep their pre-checked verdict (`decided`)."""
    verdicts = list(checked) or [Verdict.NEW] * n_events
    for positions, reply in zip(groups, replies, strict=True):
        for n, verdict in zip(positions, reply, strict=True):
            verdicts[n] = Verdict(verdict)
    return verdicts


def decided(arm_events: Sequence[ArmEvent], holders: Mapping[str, bytes | None]) -> list[Verdict]:
    """Return what record_counts.lua would decide from these markers' values, without writing.

    A batch spread over shards is checked first, so that one CLAIMED event stops every
    shard's writes (a script only stops its own shard's).
    """
    held: dict[str, str] = {}
    verdicts = []
    for arm_event in arm_events:
        owner = encode_owner(arm_event.user_id)
        raw = holders.get(arm_event.event_id)
        holder = held.get(arm_event.event_id, None if raw is None else text(raw))
        if holder is None:
            held[arm_event.event_id] = owner
            verdicts.append(Verdict.NEW)
        elif holder == owner:
            verdicts.append(Verdict.REPLAY)
        elif holder == UNKNOWN_OWNER:
            verdicts.append(Verdict.UNOWNED)
        else:
            verdicts.append(Verdict.CLAIMED)
    return verdicts


async def markers(
    client: Client, keys: Keys, arm_events: Sequence[ArmEvent]
) -> dict[str, bytes | None]:
    """Return the value of each event's dedupe marker (None: not counted), in one trip."""
    event_ids = list(dict.fromkeys(e.event_id for e in arm_events))
    return await _read_markers(client, keys, event_ids)


async def _read_markers(
    client: Client, keys: Keys, event_ids: Sequence[str]
) -> dict[str, bytes | None]:
    """Return the markers of event_ids under `keys`, one MGET per count shard, in one trip.

    A shard's markers share its slot, so its MGET is one command on a cluster too: a batch
    of 100 events is at most one MGET per shard instead of 100 GETs (fewer commands for
    Redis, fewer replies for redis-py to parse).
    """
    by_shard: dict[int, list[str]] = {}
    for event_id in event_ids:
        by_shard.setdefault(keys.shard_of(event_id), []).append(event_id)
    groups = list(by_shard.values())
    async with client.pipeline(transaction=False) as pipe:
        for group in groups:
            # Raw: a cluster pipeline refuses pipe.mget, yet routes a one-slot MGET.
            pipe.execute_command("MGET", *[keys.marker(event_id) for event_id in group])
        replies = await pipe.execute()
    return {
        event_id: value
        for group, values in zip(groups, replies, strict=True)
        for event_id, value in zip(group, values, strict=True)
    }


async def previous_markers(
    client: Client, keys: Keys, previous: Keys, arm_events: Sequence[ArmEvent]
) -> dict[str, bytes]:
    """Return the markers events have in the previous shard layout (store/layout.py), in one
    trip: only those found, and only where that key is not the event's marker now."""
    event_ids = [
        event_id
        for event_id in dict.fromkeys(e.event_id for e in arm_events)
        if previous.marker(event_id) != keys.marker(event_id)
    ]
    if not event_ids:
        return {}
    found = await _read_markers(client, previous, event_ids)
    return {e: v for e, v in found.items() if v is not None}


def applied(arm_events: Sequence[ArmEvent], verdicts: Sequence[Verdict]) -> list[ArmEvent]:
    """Return the events the user side applies: each event_id's first, if NEW or REPLAY."""
    seen: set[str] = set()
    kept = []
    for arm_event, verdict in zip(arm_events, verdicts, strict=True):
        if arm_event.event_id in seen:
            continue  # decided with its first occurrence: the user side takes only that
        seen.add(arm_event.event_id)
        if verdict in _APPLIED:
            kept.append(arm_event)
    return kept


def user_calls(
    keys: Keys,
    script: AsyncScript,
    user_events: Mapping[str, Sequence[UserEvent]],
    applied_events: Iterable[ArmEvent],
    user_args: Sequence[Any],
    now: float,
    *,
    cluster: bool = False,
) -> list[ScriptCall]:
    """Return the record_user.lua calls that apply each user's events, in time order.

    `user_args` are the script's arguments before the users' events (see record_user.lua);
    an event without a time of its own (`UserEvent.at`) happens `now`. Users share a call:
    on one Redis up to USERS_PER_CALL of them; on a cluster, where a user's keys are their
    own hash tag, only users whose keys are in the same slot.
    """
    wanted = {(e.event_id, e.user_id) for e in applied_events}
    groups: dict[int, list[tuple[str, list[Any]]]] = {}
    for user_id, events in user_events.items():
        taken: set[str] = set()
        kept = []
        for user_event in events:
            if (user_event.event_id, user_id) in wanted and user_event.event_id not in taken:
                taken.add(user_event.event_id)
                kept.append(user_event)
        if not kept:
            continue
        # In time order, impressions first at equal times: a batch with both an impression
        # and a click of one item must end with the item not penalised.
        ordered = sorted(
            kept, key=lambda e: (now if e.at is None else e.at, e.kind != "impression")
        )
        args: list[Any] = [len(ordered)]
        for user_event in ordered:
            args += [user_event.event_id, user_event.kind, user_event.item_id]
            args += [user_event.rec_id or "", now if user_event.at is None else user_event.at]
        slot = key_slot(keys.user(user_id, "state").encode()) if cluster else 0
        groups.setdefault(slot, []).append((user_id, args))
    calls: list[ScriptCall] = []
    for users in groups.values():
        for start in range(0, len(users), USERS_PER_CALL):
            call_keys: list[str] = []
            call_args = list(user_args)
            for user_id, args in users[start : start + USERS_PER_CALL]:
                call_keys += keys.user_keys(user_id)
                call_args += args
            calls.append((script, call_keys, call_args))
    return calls


def outcome_commands(
    keys: Keys, applied_events: Iterable[ArmEvent], ttl_s: int
) -> list[tuple[Any, ...]]:
    """Return the HSETs and EXPIREs that flag the applied events' outcomes on served lists."""
    fields: dict[str, set[str]] = {}
    for arm_event in applied_events:
        if arm_event.outcome is not None:
            rec_id, field = arm_event.outcome
            fields.setdefault(rec_id, set()).add(field)
    return [
        ("HSET", keys.outcomes(rec_id), *[x for f in sorted(flags) for x in (f, 1)])
        for rec_id, flags in fields.items()
    ] + [("EXPIRE", keys.outcomes(rec_id), ttl_s) for rec_id in fields]
