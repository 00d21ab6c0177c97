"""Export and import of a prefix's whole state, over the connection of a Store.

What the state file holds is service/state; this module only reads and writes Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from service.store.codecs import (
    KINDS,
    UNKNOWN_OWNER,
    decode_item,
    decode_owner,
    encode_clusters,
    encode_embedding,
    encode_item_meta,
    encode_owner,
    item_meta,
    text,
    text_map,
)
from service.store.connection import (
    redis_errors_as_unavailable,
    replied,
    unavailable_on_redis_errors,
)
from service.store.keys import Keys, tagged_id
from service.store.records import ClusterModel, ItemRecord, Versions
from service.store.serving import Store

V = TypeVar("V")

# Reading the state retries when a fit lands mid-read; more than this means fits in a loop.
_STATE_ATTEMPTS = 5
# Fields per HSET or keys per UNLINK inside an import transaction.
_CHUNK = 1000


class StateNotEmpty(RuntimeError):
    """An import without replace found items, counts or clusters in the store."""

    def __init__(self, present: list[str]) -> None:
        super().__init__(f"the store already holds {', '.join(present)}")
        self.present = present


class StateChanged(RuntimeError):
    """The store changed while a state was being read or written; nothing was written."""


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """What an export reads in one transaction; counts and times as stored text.

    `counts` and `times` map (imp|clk|cnv, cluster or None for global) to item_id -> text,
    for the clusters of `clusters.gen`; `at_ms` is the server's clock at the read.
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


def _unix_ms(server_time: tuple[int, int]) -> int:
    seconds, micros = server_time
    return int(seconds) * 1000 + int(micros) // 1000


def _chunks(values: Sequence[V]) -> Iterable[Sequence[V]]:
    return (values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK))


def _hset_all(pipe: Pipeline, key: str, mapping: dict[str, Any]) -> None:
    """Queue HSETs of a mapping in chunks (none for an empty one, which HSET refuses)."""
    fields = list(mapping.items())
    for chunk in _chunks(fields):
        pipe.hset(key, mapping=dict(chunk))


# -- export -------------------------------------------------------------------------------


@unavailable_on_redis_errors
async def read_state(store: Store) -> StateSnapshot:
    """Return catalog, clustering, counters and the current generation's counts at once."""
    keys = store.keys
    for _ in range(_STATE_ATTEMPTS):
        async with store.client.pipeline(transaction=True) as pipe:
            # A fit between reading the clustering and reading the counts would pair one
            # generation with another's counts; WATCH turns that into a retry.
            await pipe.watch(keys.clusters)
            clusters = await store.load_clusters()
            rows = [(kind, c) for c in [*range(clusters.k), None] for kind in KINDS]
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.time()
            pipe.hget(keys.catalog_info, "version")
            pipe.get(keys.arms_version)
            pipe.get(keys.decay_since)
            pipe.hgetall(keys.stats)
            pipe.hgetall(keys.fatigue)
            pipe.hgetall(keys.item_meta)
            pipe.hgetall(keys.item_embeddings)
            for kind, cluster in rows:
                gen = None if cluster is None else clusters.gen
                pipe.hgetall(keys.arms(kind, gen, cluster))
                pipe.hgetall(keys.arm_times(kind, gen, cluster))
            try:
                (
                    now,
                    items_v,
                    arms_v,
                    since,
                    stats,
                    fatigue,
                    metas,
                    embs,
                    *hashes,
                ) = await pipe.execute()
            except redis.WatchError:
                continue
        return StateSnapshot(
            at_ms=_unix_ms(now),
            items_version=int(items_v or 0),
            arms_version=int(arms_v or 0),
            items=[decode_item(text(i), meta, embs.get(i)) for i, meta in metas.items()],
            clusters=clusters,
            counts={row: text_map(h) for row, h in zip(rows, hashes[0::2], strict=True)},
            times={row: text_map(h) for row, h in zip(rows, hashes[1::2], strict=True)},
            decay_since=None if since is None else text(since),
            stats=text_map(stats),
            fatigue=text_map(fatigue),
        )
    raise StateChanged("the clustering changed during every attempt to read the state")


async def dedupe_markers(
    store: Store, set_by_ms: int, retention_s: int, batch: int = 1000
) -> AsyncIterator[list[tuple[str, int, str | None]]]:
    """Yield batches of (event_id, expiry in unix ms, owner) of the markers set by `set_by_ms`.

    The owner is the user the event counted for; None for markers without one.

    A marker's setting time is its expiry minus the retention. Markers set later (and
    before this scan) belong to events counted after a read_state, so they are left out:
    the file's markers and counts then agree.
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
    store: Store, marker_keys: list[str], set_by_ms: int, retention_s: int
) -> list[tuple[str, int, str | None]]:
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.time()
        for key in marker_keys:
            pipe.pttl(key)
            pipe.get(key)
        now, *replies = await pipe.execute()
    now_ms = _unix_ms(now)
    markers = []
    for key, ttl, owner in zip(marker_keys, replies[0::2], replies[1::2], strict=True):
        expires_ms = now_ms + ttl
        set_at_ms = expires_ms - retention_s * 1000
        # ttl < 0: expired since the SCAN (-2), or no expiry (-1): not a banditrec marker.
        if ttl >= 0 and owner is not None and not set_by_ms < set_at_ms <= now_ms:
            event_id = store.keys.marker_event_id(key)
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
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.time()
        for user_id in user_ids:
            keys = store.keys.user_keys(user_id)
            pipe.hgetall(keys.state)
            pipe.lrange(keys.clicks, 0, -1)
            pipe.hgetall(keys.seen)
            pipe.zrange(keys.events, 0, -1, withscores=True)
            pipe.hgetall(keys.last_clicks)
            for key in keys:
                pipe.pttl(key)
        now, *raw = await pipe.execute()
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
                expires_ms=None if -1 in live else _unix_ms(now) + max(live),
            )
        )
    return users


# -- import -------------------------------------------------------------------------------


@unavailable_on_redis_errors
async def write_state(store: Store, plan: StateWrite, planned_gen: int, *, replace: bool) -> None:
    """Write an imported state in one transaction; with `replace`, instead of the prefix's keys.

    Its counters end above the store's when it is written. Raises StateNotEmpty (without
    `replace`) if the store holds items, counts or clusters, and StateChanged if the
    clustering generation is no longer `planned_gen`; either way nothing is written.
    """
    keys, client = store.keys, store.client
    doomed: list[str] = []
    if replace:
        # Keys created after this scan outlive the import: replace a store at rest.
        everything = client.scan_iter(match=keys.every_key, count=1000)
        doomed = [text(key) async for key in everything]
    async with client.pipeline(transaction=True) as pipe:
        # A catalog change or a fit from here on makes EXEC fail, so what is read below
        # still holds when the transaction runs. Counted events are not watched, so a busy
        # store cannot starve an import: the catalog's new version reloads workers anyway.
        await pipe.watch(keys.catalog_info, keys.clusters)
        current = await store.versions()
        if current.clusters != planned_gen:
            raise StateChanged("a clustering was fitted since the import was planned")
        if not replace:
            present = await _present_state(store)
            if present:
                raise StateNotEmpty(present)
            doomed = _import_targets(keys, plan)
        now_ms = _unix_ms(await replied(client.time()))
        pipe.multi()  # type: ignore[no-untyped-call]
        for chunk in _chunks(doomed):
            pipe.unlink(*chunk)
        _queue_state(pipe, keys, plan, current, now_ms)
        try:
            await pipe.execute()
        except redis.WatchError as exc:
            raise StateChanged("the store changed during the import") from exc


async def _present_state(store: Store) -> list[str]:
    """Return, as phrases, which of items, counts and clusters the store holds."""
    keys = store.keys
    async with store.client.pipeline(transaction=False) as pipe:
        pipe.hlen(keys.item_meta)
        # Every counted event is counted in the global arms, so these hold any count.
        pipe.exists(*(keys.arms(kind) for kind in KINDS))
        pipe.hget(keys.clusters, "gen")
        n_items, n_counts, gen = await pipe.execute()
    present = [f"{n_items} items"] if n_items else []
    present += ["arm counts"] if n_counts else []
    present += [f"clusters (generation {int(gen)})"] if gen is not None else []
    return present


def _import_targets(keys: Keys, plan: StateWrite) -> list[str]:
    """Return every key an import writes or must clear, short of the whole prefix."""
    targets = [keys.item_meta, keys.item_embeddings, keys.catalog_info]
    targets += [keys.clusters, keys.arms_version, keys.changes]
    targets += [keys.decay_since, keys.stats, keys.fatigue]
    for kind, cluster in {*plan.counts, *plan.times}:
        gen = None if cluster is None else plan.gen
        targets += [keys.arms(kind, gen, cluster), keys.arm_times(kind, gen, cluster)]
    for user in plan.users:
        targets += keys.user_keys(user.user_id)
    return targets


def _queue_state(
    pipe: Pipeline, keys: Keys, plan: StateWrite, current: Versions, now_ms: int
) -> None:
    """Queue the writes of an imported state on a transaction; the changes stream stays gone."""
    metas: dict[str, str] = {}
    embeddings: dict[str, bytes] = {}
    for item in plan.items:
        meta = item_meta(item.tags, item.pools, item.active, item.updated)
        metas[item.item_id] = encode_item_meta(meta)
        if item.embedding is not None:
            embeddings[item.item_id] = encode_embedding(item.embedding)
    _hset_all(pipe, keys.item_meta, metas)
    _hset_all(pipe, keys.item_embeddings, embeddings)
    info = {"version": max(plan.items_version, current.items + 1)}
    if plan.dim:
        info["dim"] = plan.dim
    pipe.hset(keys.catalog_info, mapping=info)
    clusters = plan.clusters
    if clusters is not None:
        assert clusters.centers is not None
        fields = encode_clusters(
            clusters.centers, clusters.inertia or 0.0, clusters.sizes, clusters.fitted_at or 0.0
        )
        pipe.hset(keys.clusters, mapping={"gen": clusters.gen, **fields})
    for (kind, cluster), values in plan.counts.items():
        gen = None if cluster is None else plan.gen
        _hset_all(pipe, keys.arms(kind, gen, cluster), values)
    for (kind, cluster), times in plan.times.items():
        gen = None if cluster is None else plan.gen
        _hset_all(pipe, keys.arm_times(kind, gen, cluster), times)
    pipe.set(keys.arms_version, max(plan.arms_version, current.arms + 1))
    if plan.decay_since is not None:
        pipe.set(keys.decay_since, plan.decay_since)
    _hset_all(pipe, keys.stats, plan.stats)
    _hset_all(pipe, keys.fatigue, plan.fatigue)
    for event_id, expires_ms, owner in plan.dedupe:
        if expires_ms > now_ms:
            value = UNKNOWN_OWNER if owner is None else encode_owner(owner)
            pipe.set(keys.marker(event_id), value, pxat=expires_ms)
    for user in plan.users:
        if user.expires_ms is None or user.expires_ms > now_ms:
            _queue_user(pipe, keys, user)


def _queue_user(pipe: Pipeline, keys: Keys, user: StoredUser) -> None:
    user_keys = keys.user_keys(user.user_id)
    _hset_all(pipe, user_keys.state, user.state)
    _hset_all(pipe, user_keys.seen, user.seen)
    _hset_all(pipe, user_keys.last_clicks, user.last_clicks)
    if user.clicks:
        pipe.rpush(user_keys.clicks, *user.clicks)
    if user.events:
        pipe.zadd(user_keys.events, dict(user.events))
    if user.expires_ms is not None:
        for key in user_keys:
            pipe.pexpireat(key, user.expires_ms)
