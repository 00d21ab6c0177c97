"""Import of a prefix's whole state (StateWrite), over the connection of a Store.

What the state file holds is service/state; this module only writes Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

from service.store.codecs import (
    KINDS,
    UNKNOWN_OWNER,
    encode_clusters,
    encode_embedding,
    encode_item_meta,
    encode_owner,
    item_meta,
    text,
)
from service.store.connection import replied, unavailable_on_redis_errors
from service.store.keys import Keys
from service.store.records import Versions
from service.store.serving import Store
from service.store.state import (
    StateChanged,
    StateNotEmpty,
    StateWrite,
    StoredUser,
    unix_ms,
)

V = TypeVar("V")

# Fields per HSET or keys per UNLINK inside an import transaction.
_CHUNK = 1000
# The count shard an import writes its counts to (every shard's part counts alike).
_IMPORT_SHARD = 0
# The pipeline of one Redis, or of a cluster (no transaction there).
AnyPipeline = Pipeline | ClusterPipeline


def _chunks(values: Sequence[V]) -> Iterable[Sequence[V]]:
    return (values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK))


def _hset_all(pipe: AnyPipeline, key: str, mapping: dict[str, Any]) -> None:
    """Queue HSETs of a mapping in chunks (none for an empty one, which HSET refuses)."""
    fields = list(mapping.items())
    for chunk in _chunks(fields):
        pipe.hset(key, mapping=dict(chunk))


@unavailable_on_redis_errors
async def write_state(store: Store, plan: StateWrite, planned_gen: int, *, replace: bool) -> None:
    """Write an imported state; with `replace`, instead of the prefix's keys.

    On one Redis it is one transaction. Its counters end above the store's when it is
    written. Raises StateNotEmpty (without `replace`) if the store holds items, counts or
    clusters, and StateChanged if the clustering generation is no longer `planned_gen`;
    either way nothing is written. Counts go to the first count shard (any shard's part
    counts), markers to their events' shards.
    """
    if isinstance(store.client, RedisCluster):
        await _write_state_on_cluster(store, plan, planned_gen, replace=replace)
        return
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
        current = await _checked_versions(store, plan, planned_gen, replace=replace)
        if not replace:
            doomed = _import_targets(keys, plan)
        now_ms = unix_ms(await replied(client.time()))
        pipe.multi()  # type: ignore[no-untyped-call]
        for chunk in _chunks(doomed):
            pipe.unlink(*chunk)
        _queue_state(pipe, keys, plan, current, now_ms)
        try:
            await pipe.execute()
        except redis.WatchError as exc:
            raise StateChanged("the store changed during the import") from exc


async def _write_state_on_cluster(
    store: Store, plan: StateWrite, planned_gen: int, *, replace: bool
) -> None:
    """Write an imported state on a Redis Cluster: one pipeline, no transaction.

    A cluster runs a transaction in one slot only, and the state spans many; so the
    checks are made just before the writes, not atomically with them: import into a
    store at rest (no fit, no catalog change meanwhile), as `--replace` already asks.
    """
    keys, client = store.keys, store.client
    doomed: list[str] = []
    if replace:
        everything = client.scan_iter(match=keys.every_key, count=1000)
        doomed = [text(key) async for key in everything]
    current = await _checked_versions(store, plan, planned_gen, replace=replace)
    if not replace:
        doomed = _import_targets(keys, plan)
    now_ms = unix_ms(await replied(client.time()))
    async with client.pipeline(transaction=False) as pipe:
        for key in doomed:  # one key per command (several slots); raw: a cluster
            pipe.execute_command("UNLINK", key)  # pipeline's unlink() is not queued
        _queue_state(pipe, keys, plan, current, now_ms)
        await pipe.execute()


async def _checked_versions(
    store: Store, plan: StateWrite, planned_gen: int, *, replace: bool
) -> Versions:
    """Return the store's versions; raise StateChanged or StateNotEmpty as write_state says."""
    current = await store.versions()
    if current.clusters != planned_gen:
        raise StateChanged("a clustering was fitted since the import was planned")
    if not replace:
        present = await _present_state(store)
        if present:
            raise StateNotEmpty(present)
    return current


async def _present_state(store: Store) -> list[str]:
    """Return, as phrases, which of items, counts and clusters the store holds."""
    keys = store.keys
    async with store.client.pipeline(transaction=False) as pipe:
        pipe.hlen(keys.item_meta)
        pipe.hget(keys.clusters, "gen")
        # Every counted event is counted in its shard's global arms, so these hold any count.
        for shard in range(keys.shards):
            for kind in KINDS:
                # Raw: a cluster pipeline's exists() is a coroutine of its own.
                pipe.execute_command("EXISTS", keys.arms(kind, shard=shard))
        n_items, gen, *n_counts = await pipe.execute()
    present = [f"{n_items} items"] if n_items else []
    present += ["arm counts"] if any(n_counts) else []
    present += [f"clusters (generation {int(gen)})"] if gen is not None else []
    return present


def _import_targets(keys: Keys, plan: StateWrite) -> list[str]:
    """Return every key an import writes or must clear, short of the whole prefix."""
    targets = [keys.item_meta, keys.item_embeddings, keys.catalog_info, keys.clusters]
    for shard in range(keys.shards):
        targets += [keys.arms_version(shard), keys.changes(shard)]
        targets += [keys.decay_since(shard), keys.stats(shard), keys.fatigue(shard)]
    for kind, cluster in {*plan.counts, *plan.times}:
        gen = None if cluster is None else plan.gen
        targets += [
            keys.arms(kind, gen, cluster, shard=_IMPORT_SHARD),
            keys.arm_times(kind, gen, cluster, shard=_IMPORT_SHARD),
        ]
    for user in plan.users:
        targets += keys.user_keys(user.user_id)
    return targets


def _queue_state(
    pipe: AnyPipeline, keys: Keys, plan: StateWrite, current: Versions, now_ms: int
) -> None:
    """Queue the writes of an imported state; the changes streams stay gone."""
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
    shard = _IMPORT_SHARD
    for (kind, cluster), values in plan.counts.items():
        gen = None if cluster is None else plan.gen
        _hset_all(pipe, keys.arms(kind, gen, cluster, shard=shard), values)
    for (kind, cluster), times in plan.times.items():
        gen = None if cluster is None else plan.gen
        _hset_all(pipe, keys.arm_times(kind, gen, cluster, shard=shard), times)
    pipe.set(keys.arms_version(shard), max(plan.arms_version, current.arms + 1))
    if plan.decay_since is not None:
        pipe.set(keys.decay_since(shard), plan.decay_since)
    _hset_all(pipe, keys.stats(shard), plan.stats)
    _hset_all(pipe, keys.fatigue(shard), plan.fatigue)
    for event_id, expires_ms, owner in plan.dedupe:
        if expires_ms > now_ms:
            value = UNKNOWN_OWNER if owner is None else encode_owner(owner)
            pipe.set(keys.marker(event_id), value, pxat=expires_ms)
    for user in plan.users:
        if user.expires_ms is None or user.expires_ms > now_ms:
            _queue_user(pipe, keys, user)


def _queue_user(pipe: AnyPipeline, keys: Keys, user: StoredUser) -> None:
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
