"""Export of a prefix's whole state, over the connection of a Store, and the records an
import writes (restore.py writes them).

What the state file holds is service/state; this module only reads Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from service.store.codecs import (
    KINDS,
    decode_owner,
    text,
    text_map,
)
from service.store.connection import (
    ScriptCall,
    redis_errors_as_unavailable,
    register_script,
    replied,
    run_scripts,
    unavailable_on_redis_errors,
)
from service.store.counts import Part, flat_text, number_text, sum_parts
from service.store.keys import tagged_id
from service.store.records import ClusterModel, ItemRecord
from service.store.serving import Store

# Reading the state retries when a fit lands mid-read; more than this means fits in a loop.
_STATE_ATTEMPTS = 5


class StateNotEmpty(RuntimeError):
    """An import without replace found items, counts or clusters in the store."""

    def __init__(self, present: list[str]) -> None:
        super().__init__(f"the store already holds {', '.join(present)}")
        self.present = present


class StateChanged(RuntimeError):
    """The store changed while a state was being read or written; nothing was written."""


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """What an export reads; counts and times as text, summed over the count shards.

    `counts` and `times` map (imp|clk|cnv, cluster or None for global) to item_id -> text,
    for the clusters of `clusters.gen`; `at_ms` is the server's clock at the read (of the
    first shard read; `shard_ms` has each shard's).
    """

    at_ms: int
    items_version: int
    arms_version: int
    items: list[ItemRecord]
    clusters: ClusterModel
    counts: dict[tuple[str, int | None], dict[str, str]]
    times: dict[tuple[str, int | None], dict[str, str]]
    decay_since: str | None
    stats: dict[str, str]
    # The learned seen decay's evidence (keys.fatigue), field -> text.
    fatigue: dict[str, str]
    # When each count shard was read, by its server's clock (unix ms).
    shard_ms: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredUser:
    """One user's keys as stored: hashes and lists as text, events with their times."""

    user_id: str
    state: dict[str, str]
    clicks: list[str]
    seen: dict[str, str]
    events: list[tuple[str, float]]
    last_clicks: dict[str, str]
    expires_ms: int | None  # unix ms; None: never expires


@dataclass(frozen=True, slots=True)
class StateWrite:
    """Everything an import writes, in stored units; cluster counts go under generation `gen`.

    The versions are floors: the store writes them higher if its own counters moved past.
    """

    items_version: int
    arms_version: int
    gen: int
    dim: int
    items: list[ItemRecord]
    clusters: ClusterModel | None
    counts: dict[tuple[str, int | None], dict[str, str]]
    times: dict[tuple[str, int | None], dict[str, str]]
    decay_since: str | None
    stats: dict[str, str]
    fatigue: dict[str, str]
    dedupe: list[tuple[str, int, str | None]]  # event_id, expiry in unix ms, owner or None
    users: list[StoredUser]


def unix_ms(server_time: tuple[int, int]) -> int:
    seconds, micros = server_time
    return int(seconds) * 1000 + int(micros) // 1000


# -- export -------------------------------------------------------------------------------


@unavailable_on_redis_errors
async def read_state(store: Store, half_life_s: float = 0.0) -> StateSnapshot:
    """Return catalog, clustering, counters and the current generation's counts, summed
    over the count shards (discounted to the latest of their times with `half_life_s`).

    Each shard is read at one instant (read_counts.lua), and `shard_ms` says when, by
    that shard's server clock; the markers exported with it are those set by then.
    """
    keys = store.keys
    script = register_script(store.client, "read_counts")
    for _ in range(_STATE_ATTEMPTS):
        clusters = await store.load_clusters()
        rows = [(kind, c) for c in [*range(clusters.k), None] for kind in KINDS]
        items_version, items = await store.load_items()
        calls: list[ScriptCall] = []
        for shard in range(keys.shards):
            shard_keys = [keys.arms_version(shard), keys.changes(shard), keys.decay_since(shard)]
            for kind, cluster in rows:
                gen = None if cluster is None else clusters.gen
                shard_keys.append(keys.arms(kind, gen, cluster, shard=shard))
                shard_keys.append(keys.arm_times(kind, gen, cluster, shard=shard))
            calls.append((script, shard_keys, []))
        replies = await run_scripts(store.client, calls)
        stats = await store.stats()
        fatigue = await _summed_fatigue(store)
        # A fit between reading the clustering and reading the counts would pair one
        # generation with another's counts: read again.
        if (await store.versions()).clusters != clusters.gen:
            continue
        return _summed_state(
            replies, rows, half_life_s, items_version, items, clusters, stats, fatigue
        )
    raise StateChanged("the clustering changed during every attempt to read the state")


async def _summed_fatigue(store: Store) -> dict[str, str]:
    """Return the learned seen decay's evidence summed over the count shards, as text."""
    async with store.client.pipeline(transaction=False) as pipe:
        for shard in range(store.keys.shards):
            pipe.hgetall(store.keys.fatigue(shard))
        parts = await pipe.execute()
    total: dict[str, float] = {}
    for part in parts:
        for name, value in text_map(part).items():
            total[name] = total.get(name, 0.0) + float(value)
    return {name: repr(value) for name, value in total.items()}


def _summed_state(
    replies: list[Any],
    rows: list[tuple[str, int | None]],
    half_life_s: float,
    items_version: int,
    items: list[ItemRecord],
    clusters: ClusterModel,
    stats: dict[str, float],
    fatigue: dict[str, str],
) -> StateSnapshot:
    """Return the state of every shard's read_counts.lua reply, summed over shards."""
    parts: dict[tuple[str, int | None], dict[str, list[Part]]] = {row: {} for row in rows}
    versions, sinces, shard_ms = [], [], []
    raw_text: dict[tuple[str, int | None], dict[str, tuple[str, str | None]]] = {}
    for version, _last, since, server_time, *hashes in replies:
        versions.append(int(version or 0))
        shard_since = None if not since else float(since)
        if since:
            sinces.append(text(since))
        shard_ms.append(unix_ms(server_time))
        for n, row in enumerate(rows):
            values = flat_text(hashes[2 * n])
            times = flat_text(hashes[2 * n + 1])
            for item, value in values.items():
                stamp = times.get(item)
                part = (float(value), None if stamp is None else float(stamp), shard_since)
                parts[row].setdefault(item, []).append(part)
                raw_text.setdefault(row, {})[item] = (value, stamp)
    counts: dict[tuple[str, int | None], dict[str, str]] = {}
    stamps: dict[tuple[str, int | None], dict[str, str]] = {}
    for row, row_parts in parts.items():
        counts[row], stamps[row] = {}, {}
        for item, (total, at) in sum_parts(row_parts, half_life_s).items():
            stored_value, stored_at = raw_text[row][item]
            if len(row_parts[item]) > 1:  # not one shard's stored text: the sum's
                stored_value = number_text(total)
                stored_at = None if at is None else repr(at)
            counts[row][item] = stored_value
            if stored_at is not None:
                stamps[row][item] = stored_at
    return StateSnapshot(
        at_ms=min(shard_ms),
        items_version=items_version,
        arms_version=sum(versions),
        items=items,
        clusters=clusters,
        counts=counts,
        times=stamps,
        decay_since=min(sinces, key=float) if sinces else None,
        stats={name: number_text(float(value)) for name, value in stats.items()},
        fatigue=fatigue,
        shard_ms=tuple(shard_ms),
    )


async def dedupe_markers(
    store: Store, set_by_ms: int | Sequence[int], retention_s: int, batch: int = 1000
) -> AsyncIterator[list[tuple[str, int, str | None]]]:
    """Yield batches of (event_id, expiry in unix ms, owner) of the markers set by `set_by_ms`.

    The owner is the user the event counted for; None for markers without one.

    A marker's setting time is its expiry minus the retention. Markers set later (and
    before this scan) belong to events counted after a read_state, so they are left out:
    the file's markers and counts then agree. `set_by_ms` is one time, or one per count
    shard (StateSnapshot.shard_ms): each marker is judged by its own shard's.
    """
    marker_keys: list[str] = []
    with redis_errors_as_unavailable():
        async for raw_key in store.client.scan_iter(match=store.keys.every_marker, count=1000):
            marker_keys.append(text(raw_key))
            if len(marker_keys) >= batch:
                yield await _marker_expiries(store, marker_keys, set_by_ms, retention_s)
                marker_keys = []
        if marker_keys:
            yield await _marker_expiries(store, marker_keys, set_by_ms, retention_s)


async def _marker_expiries(
    store: Store, marker_keys: list[str], set_by_ms: int | Sequence[int], retention_s: int
) -> list[tuple[str, int, str | None]]:
    # Not a transaction: markers of several slots; expiries are right to within the
    # pipeline's duration (TIME goes first: a cluster pipeline refuses it).
    now = await replied(store.client.time())
    async with store.client.pipeline(transaction=False) as pipe:
        for key in marker_keys:
            pipe.pttl(key)
            pipe.get(key)
        replies = await pipe.execute()
    now_ms = unix_ms(now)
    markers = []
    for key, ttl, owner in zip(marker_keys, replies[0::2], replies[1::2], strict=True):
        expires_ms = now_ms + ttl
        set_at_ms = expires_ms - retention_s * 1000
        # ttl < 0: expired since the SCAN (-2), or no expiry (-1): not a banditrec marker.
        event_id = store.keys.marker_event_id(key)
        if isinstance(set_by_ms, int):
            read_at = set_by_ms
        else:
            read_at = set_by_ms[store.keys.shard_of(event_id)]
        if ttl >= 0 and owner is not None and not read_at < set_at_ms <= now_ms:
            markers.append((event_id, expires_ms, decode_owner(owner)))
    return markers


async def stored_users(store: Store, batch: int = 500) -> AsyncIterator[list[StoredUser]]:
    """Yield batches of users' stored state as text (SCAN order), each user once."""
    listed: set[str] = set()
    pending: list[str] = []
    with redis_errors_as_unavailable():
        async for raw_key in store.client.scan_iter(match=store.keys.every_user_key, count=1000):
            user_id = tagged_id(text(raw_key))
            if user_id not in listed:
                listed.add(user_id)
                pending.append(user_id)
            if len(pending) >= batch:
                yield await _stored_users(store, pending)
                pending = []
        if pending:
            yield await _stored_users(store, pending)


async def _stored_users(store: Store, user_ids: list[str]) -> list[StoredUser]:
    # Not a transaction: users of many slots. Each user's keys share a slot and are
    # written by one script at a time, so a user is still read whole, give or take a write.
    now = await replied(store.client.time())
    async with store.client.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            keys = store.keys.user_keys(user_id)
            pipe.hgetall(keys.state)
            pipe.lrange(keys.clicks, 0, -1)
            pipe.hgetall(keys.seen)
            pipe.zrange(keys.events, 0, -1, withscores=True)
            pipe.hgetall(keys.last_clicks)
            for key in keys:
                pipe.pttl(key)
        raw = await pipe.execute()
    per_user = 10
    users = []
    for n, user_id in enumerate(user_ids):
        state, clicks, seen, events, last_clicks, *ttls = raw[per_user * n : per_user * (n + 1)]
        live = [ttl for ttl in ttls if ttl != -2]
        if not live:  # expired since the SCAN
            continue
        users.append(
            StoredUser(
                user_id=user_id,
                state=text_map(state),
                clicks=[text(c) for c in clicks],
                seen=text_map(seen),
                events=[(text(e), float(score)) for e, score in events],
                last_clicks=text_map(last_clicks),
                expires_ms=None if -1 in live else unix_ms(now) + max(live),
            )
        )
    return users


# -- import -------------------------------------------------------------------------------
