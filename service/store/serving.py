"""The serving store: catalog, snapshot reads, users, feedback, served lists and clusters.

Every method is a bounded number of round trips; the keys are in keys.py, the stored
encodings in codecs.py, the multi-key updates in scripts/*.lua.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any

import numpy as np

from service.store import counts, dedupe, histories, served
from service.store.codecs import (
    KINDS,
    LIFT_FIELDS,
    ServedList,
    decode_clusters,
    decode_fatigue,
    decode_item,
    decode_user,
    encode_clusters,
    encode_embedding,
    encode_item_meta,
    stats_field,
    text,
)
from service.store.connection import (
    Client,
    ScriptCall,
    connect,
    flush_all,
    memory,
    register_script,
    replied,
    run_scripts,
    unavailable_on_redis_errors,
)
from service.store.keys import DEFAULT_COUNT_SHARDS, READINESS_PROBE_TTL_MS, Keys
from service.store.layout import Layout, current_layout
from service.store.records import (
    ArmEvent,
    ClusterModel,
    CountChange,
    CountsState,
    ItemRecord,
    LoggedWrite,
    ShardPosition,
    UserEvent,
    UserState,
    Verdict,
    Versions,
)
from service.store.served import LoggedList


class DimensionMismatch(ValueError):
    """An embedding's length differs from the catalog's dimension."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"embedding has {got} dimensions, the catalog uses {expected}")
        self.expected = expected
        self.got = got


class Store:
    """Named Redis operations for banditrec; every method is a bounded number of round trips."""

    def __init__(
        self,
        url: str,
        prefix: str = "br",
        timeout_s: float = 2.0,
        *,
        shards: int = DEFAULT_COUNT_SHARDS,
        cluster: bool = False,
        wait_replicas: int = 0,
    ) -> None:
        """`shards` count shards (keys.py); `cluster`: `url` names a node of a Redis
        Cluster; `wait_replicas` > 0: feedback is answered only once that many replicas
        hold its writes (WAIT), so a failover cannot lose acknowledged events."""
        self.url = url
        self.prefix = prefix
        self.keys = Keys(prefix, shards)
        self.cluster = cluster
        self.wait_replicas = wait_replicas
        self._layout: Layout | None = None
        self._wait_ms = int(timeout_s * 1000 / 2)
        self._redis = connect(url, timeout_s, cluster=cluster)
        self._upsert_items = register_script(self._redis, "upsert_items")
        self._delete_item = register_script(self._redis, "delete_item")
        self._record_counts = register_script(self._redis, "record_counts")
        self._record_user = register_script(self._redis, "record_user")
        self._read_counts = register_script(self._redis, "read_counts")

    @property
    def client(self) -> Client:
        """Return the Redis client (for the state export and import, which share it)."""
        return self._redis

    # -- lifecycle --------------------------------------------------------------------

    @unavailable_on_redis_errors
    async def ping(self) -> bool:
        """Return True when Redis answers."""
        return bool(await replied(self._redis.ping()))

    @unavailable_on_redis_errors
    async def memory(self) -> tuple[int, int]:
        """Return Redis's (used_memory, maxmemory) in bytes; maxmemory 0 means no limit.

        On a cluster: the fullest master's.
        """
        return await memory(self._redis)

    @unavailable_on_redis_errors
    async def probe_readiness(self) -> None:
        """Raise StoreUnavailable, naming the cause, unless Redis takes a read and a write now.

        A PING answers on a server that refuses every write (out of memory, a read-only
        replica, failed persistence, too few replicas), and INFO fields would have to be
        read against settings that managed Redis often hides. A read and a tiny write with a
        short TTL fail exactly when the service's own reads and writes would, with the same
        error; the write is one small key per probe.
        """
        key = self.keys.readiness_probe
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.set(key, repr(time.time()), px=READINESS_PROBE_TTL_MS)
            await pipe.execute()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    @unavailable_on_redis_errors
    async def flush(self) -> None:
        """Delete every key of this database, on every master of a cluster (tests only;
        `import --replace` deletes only this prefix's keys)."""
        await flush_all(self._redis)

    # -- catalog ----------------------------------------------------------------------

    @unavailable_on_redis_errors
    async def upsert_items(
        self, items: Sequence[tuple[str, dict[str, Any], Sequence[float] | None]]
    ) -> int:
        """Write (item_id, meta, embedding) triples atomically; return the catalog dim (0 = none).

        Raises DimensionMismatch (nothing written) if an embedding disagrees with the stored dim.
        """
        dims = {len(e) for _, _, e in items if e is not None}
        if len(dims) > 1:
            first, *_ = sorted(dims)
            raise DimensionMismatch(first, max(dims))
        new_dim = dims.pop() if dims else 0
        argv: list[Any] = [new_dim]
        for item_id, meta, embedding in items:
            argv += [item_id, encode_item_meta(meta), encode_embedding(embedding)]
        keys = self.keys
        catalog = [keys.item_meta, keys.item_embeddings, keys.catalog_info]
        ok, dim = await self._upsert_items(keys=catalog, args=argv)
        if not ok:
            raise DimensionMismatch(int(dim), new_dim)
        return int(dim)

    @unavailable_on_redis_errors
    async def get_item(self, item_id: str) -> ItemRecord | None:
        """Return one item, or None if it is not in the catalog."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.item_meta, item_id)
            pipe.hget(self.keys.item_embeddings, item_id)
            meta, emb = await pipe.execute()
        return None if meta is None else decode_item(item_id, meta, emb)

    @unavailable_on_redis_errors
    async def delete_item(self, item_id: str) -> bool:
        """Remove an item from the catalog (its counts stay); return whether it existed."""
        keys = self.keys
        catalog = [keys.item_meta, keys.item_embeddings, keys.catalog_info]
        return bool(await self._delete_item(keys=catalog, args=[item_id]))

    @unavailable_on_redis_errors
    async def known_items(self, item_ids: Sequence[str]) -> set[str]:
        """Return the subset of item_ids in the catalog or with counts in the global arms.

        An item deleted from the catalog keeps its counts (delete_item), so feedback on it
        still counts; only ids that never had either are unknown.
        """
        if not item_ids:
            return set()
        ids = list(item_ids)
        metas = await replied(self._redis.hmget(self.keys.item_meta, ids))
        known = {i for i, meta in zip(ids, metas, strict=True) if meta is not None}
        missing = [i for i in ids if i not in known]
        if not missing:  # the usual batch: one round trip, not one per count shard
            return known
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                for kind in KINDS:
                    pipe.hmget(self.keys.arms(kind, shard=shard), missing)
            replies = await pipe.execute()
        return known | {i for i, *found in zip(missing, *replies, strict=True) if any(found)}

    @unavailable_on_redis_errors
    async def load_items(self) -> tuple[int, list[ItemRecord]]:
        """Return (catalog version, every item), the version read first.

        Not a transaction (a cluster's would need a redis-py fix): a catalog change
        landing mid-read leaves the version behind the items, so the next refresh
        reloads them; never ahead.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.catalog_info, "version")
            pipe.hgetall(self.keys.item_meta)
            pipe.hgetall(self.keys.item_embeddings)
            version, metas, embs = await pipe.execute()
        items = [
            decode_item(text(item_id), meta, embs.get(item_id)) for item_id, meta in metas.items()
        ]
        return int(version or 0), items

    # -- snapshot reads ---------------------------------------------------------------

    @unavailable_on_redis_errors
    async def versions(self) -> Versions:
        """Return the change counters of catalog, counts and clusters in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.catalog_info, "version")
            pipe.hget(self.keys.clusters, "gen")
            for shard in range(self.keys.shards):
                pipe.get(self.keys.arms_version(shard))
            items, gen, *arms = await pipe.execute()
        return Versions(int(items or 0), sum(int(a or 0) for a in arms), int(gen or 0))

    @unavailable_on_redis_errors
    async def load_clusters(self) -> ClusterModel:
        """Return the current cluster model (generation 0, one cluster, before any fit)."""
        return decode_clusters(await replied(self._redis.hgetall(self.keys.clusters)))

    @unavailable_on_redis_errors
    async def load_counts(self, gen: int, k: int, *, half_life_s: float = 0.0) -> CountsState:
        """Return every count of clusters 0..k-1 then global, and each shard's position.

        With `half_life_s` > 0, also when each count was last discounted (see CountsState).
        """
        return await counts.load_counts(
            self._redis, self.keys, self._read_counts, gen, k, half_life_s
        )

    @unavailable_on_redis_errors
    async def read_changes(
        self, positions: Sequence[ShardPosition], limit: int
    ) -> list[CountChange]:
        """Return up to `limit` change entries per shard newer than `positions`."""
        return await counts.read_changes(self._redis, self.keys, positions, limit)

    @unavailable_on_redis_errors
    async def arm_counts(
        self, item_id: str, gen: int, k: int, *, half_life_s: float = 0.0
    ) -> tuple[list[tuple[float, ...]], list[tuple[float | None, ...]], float | None]:
        """Return one item's counts (summed over shards) and their times, clusters 0..k-1
        then global.

        Each row is (impressions, clicks, conversions) in stored units; the times say when
        each was last discounted (None: never); last comes the decay-since time, if any.
        """
        return await counts.item_counts(self._redis, self.keys, item_id, gen, k, half_life_s)

    # -- users and served lists -------------------------------------------------------

    @unavailable_on_redis_errors
    async def read_users(
        self,
        user_ids: Iterable[str],
        history_n: int,
        *,
        with_seen: bool = True,
        last_clicks_of: Collection[str] = (),
    ) -> tuple[dict[str, UserState], int, int]:
        """Return (users' state, catalog version, clustering generation) in one round trip.

        Unknown users get an empty state. The two counters let a worker notice catalog or
        clustering changes made through another worker before it acts, at no extra trip.
        The seen hash (recommend needs it, feedback not) is read only when asked for, and
        the last clicks (to attribute conversions) only of the users in `last_clicks_of`.
        """
        user_ids = list(dict.fromkeys(user_ids))
        async with self._redis.pipeline(transaction=False) as pipe:
            user = self.keys.user  # only the keys read: all five cost 7% of a feedback batch
            for user_id in user_ids:
                pipe.hgetall(user(user_id, "state"))
                pipe.lrange(user(user_id, "clicks"), 0, history_n - 1)
                if with_seen:
                    pipe.hgetall(user(user_id, "seen"))
                if user_id in last_clicks_of:
                    pipe.hgetall(user(user_id, "lastclick"))
            pipe.hget(self.keys.catalog_info, "version")
            pipe.hget(self.keys.clusters, "gen")
            *raw, items_version, gen = await pipe.execute()
        users = {}
        replies = iter(raw)
        for user_id in user_ids:
            state_hash, clicks = next(replies), next(replies)
            seen = next(replies) if with_seen else {}
            last_clicks = next(replies) if user_id in last_clicks_of else {}
            users[user_id] = decode_user(state_hash, clicks, seen, last_clicks)
        return users, int(items_version or 0), int(gen or 0)

    @unavailable_on_redis_errors
    async def read_rec_logs(self, rec_ids: Sequence[str]) -> dict[str, ServedList]:
        """Return the logged served lists that still exist, by rec_id."""
        if not rec_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for rec_id in rec_ids:
                pipe.get(self.keys.rec(rec_id))
            raw = await pipe.execute()
        return {r: ServedList.decode(v) for r, v in zip(rec_ids, raw, strict=True) if v is not None}

    @unavailable_on_redis_errors
    async def log_recommendations(
        self, lists: Sequence[LoggedWrite], ttl_s: int, user_ttl_s: int
    ) -> None:
        """Store served lists under their rec_ids, count them per policy and cache the
        (membership, key) of users that come with one; one round trip for all."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for rec_id, served, _ in lists:
                pipe.set(self.keys.rec(rec_id), served.encode(), ex=ttl_s)
            # One increment per (count shard, policy) for the whole batch.
            lists_by = Counter((self.keys.shard_of(r), served.policy) for r, served, _ in lists)
            for (shard, policy), count in lists_by.items():
                pipe.hincrby(self.keys.stats(shard), stats_field("lists", policy), count)
            for _, served, assignment in lists:
                if assignment is not None:
                    membership, assigned = assignment
                    user_state = self.keys.user(served.user_id, "state")
                    pipe.hset(user_state, mapping={"membership": membership, "assigned": assigned})
                    pipe.expire(user_state, user_ttl_s)
            await pipe.execute()

    @unavailable_on_redis_errors
    async def stats(self) -> dict[str, float]:
        """Return the per-policy counters (see service.serving.stats_fields) and `since`,
        summed over the count shards (`since`: the earliest)."""
        return await counts.stats(self._redis, self.keys)

    @unavailable_on_redis_errors
    async def fatigue_evidence(self, size: int) -> np.ndarray:
        """Return the learned seen decay's evidence, (3, size), summed over the count
        shards: codecs.decode_fatigue."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                pipe.hgetall(self.keys.fatigue(shard))
            parts = await pipe.execute()
        return sum((decode_fatigue(part, size) for part in parts), np.zeros((3, size)))

    @unavailable_on_redis_errors
    async def lift_evidence(self) -> dict[str, float]:
        """Return the measured lift's counters (codecs.LIFT_FIELDS), summed over the shards."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                pipe.hmget(self.keys.fatigue(shard), list(LIFT_FIELDS))
            parts = await pipe.execute()
        return {f: sum(float(p[i] or 0) for p in parts) for i, f in enumerate(LIFT_FIELDS)}

    @unavailable_on_redis_errors
    async def reset_stats(self) -> None:
        """Forget the per-policy counters, e.g. after changing the mode."""
        # Not one transaction on a cluster (the shards' slots differ): a batch counted
        # meanwhile may keep its part; the counters restart either way.
        since = repr(time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                # A raw command: a cluster pipeline's delete() is a coroutine, not queued.
                pipe.execute_command("DEL", self.keys.stats(shard))
                pipe.hset(self.keys.stats(shard), "since", since)
            await pipe.execute()

    # -- feedback ---------------------------------------------------------------------

    @unavailable_on_redis_errors
    async def record_feedback(
        self,
        arm_events: Sequence[ArmEvent],
        user_events: dict[str, list[UserEvent]],
        *,
        now: float,
        retention_s: int,
        seen_half_life_s: float,
        history_n: int,
        user_ttl_s: int,
        user_events_max: int,
        user_items_max: int,
        outcome_ttl_s: int = 0,
        count_half_life_s: float = 0.0,
    ) -> list[Verdict]:
        """Apply a validated batch; return, per arm event, what its dedupe marker decided.

        `user_events` lists each user's events in batch order. With any CLAIMED verdict
        nothing is written. Otherwise NEW events are counted, and each event_id's first
        NEW or REPLAY event is applied to its user's state and flags its `outcome`
        (idempotent, for off-policy evaluation): two round trips, counts first, so that
        one decision covers both (why a crash between them is repaired: store/dedupe.py),
        and one before them when the events fall in several count shards, to read their
        markers (so that a CLAIMED event stops every shard's writes).

        With `count_half_life_s` > 0 every count touched is first discounted to `now`
        (halved per half-life since it was last touched), then incremented. A user keeps
        at most `user_events_max` applied event ids and `user_items_max` items in each of
        its seen and last-click hashes (record_user.lua).
        """
        keys = self.keys
        previous = await self._previous_layout(retention_s)
        found: dict[str, bytes] = {}
        if previous is not None:
            found = await dedupe.previous_markers(self._redis, keys, previous, arm_events)
        # Events whose marker is in the previous layout are decided by it, not counted.
        counted = [n for n, e in enumerate(arm_events) if e.event_id not in found]
        calls, groups = dedupe.count_calls(
            keys,
            self._record_counts,
            [arm_events[n] for n in counted],
            now=now,
            retention_s=retention_s,
            count_half_life_s=count_half_life_s,
        )
        checked: list[Verdict] = []
        if len(calls) > 1 or found:
            markers = await dedupe.markers(self._redis, keys, arm_events)
            holders = {**found, **{e: v for e, v in markers.items() if v is not None}}
            checked = dedupe.decided(arm_events, holders)
            if Verdict.CLAIMED in checked:
                return checked
        groups = [[counted[n] for n in group] for group in groups]
        verdicts = dedupe.merged(len(arm_events), groups, await self._run(calls), checked)
        if Verdict.CLAIMED in verdicts:
            return verdicts
        applied = dedupe.applied(arm_events, verdicts)
        user_args = [now, seen_half_life_s, history_n, retention_s, user_ttl_s]
        user_args += [user_events_max, user_items_max]
        calls = dedupe.user_calls(
            keys, self._record_user, user_events, applied, user_args, now, cluster=self.cluster
        )
        commands = dedupe.outcome_commands(keys, applied, outcome_ttl_s)
        if calls or commands:
            await self._run(calls, commands)
        return verdicts

    async def _previous_layout(self, retention_s: int) -> Keys | None:
        """Return the keys of the shard layout markers were written under before this
        one, while they may be alive (store/layout.py); the layout is read once."""
        if self._layout is None:
            self._layout = await current_layout(self._redis, self.keys, time.time())
        return self._layout.previous_keys(self.keys, time.time(), retention_s)

    async def _run(
        self, calls: Sequence[ScriptCall], commands: Sequence[tuple[Any, ...]] = ()
    ) -> list[Any]:
        return await run_scripts(
            self._redis, calls, commands, wait_replicas=self.wait_replicas, wait_ms=self._wait_ms
        )

    def served_lists(self, batch: int = 500) -> AsyncIterator[list[LoggedList]]:
        """Yield batches of logged served lists (SCAN order), each with its outcome flags."""
        return served.served_lists(self._redis, self.keys, batch)

    # -- clusters ---------------------------------------------------------------------

    @unavailable_on_redis_errors
    async def user_histories(self, limit: int, history_n: int) -> dict[str, list[str]]:
        """Return up to `limit` users' click histories (SCAN order), for a k-means fit."""
        return await histories.click_histories(self._redis, self.keys, limit, history_n)

    @unavailable_on_redis_errors
    async def save_clusters(
        self, centers: np.ndarray, inertia: float, sizes: list[int]
    ) -> ClusterModel:
        """Store new centres as the next generation; return the stored model."""
        fitted_at = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.keys.clusters, "gen", 1)
            pipe.hset(
                self.keys.clusters, mapping=encode_clusters(centers, inertia, sizes, fitted_at)
            )
            gen, _ = await pipe.execute()
        return ClusterModel(
            gen=int(gen),
            k=int(centers.shape[0]),
            centers=np.asarray(centers, dtype=np.float64),
            inertia=float(inertia),
            sizes=sizes,
            fitted_at=fitted_at,
        )
