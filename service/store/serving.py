"""The serving store: catalog, snapshot reads, users, feedback, served lists and clusters.

Every method is a bounded number of round trips; the keys are in keys.py, the stored
encodings in codecs.py, the multi-key updates in scripts/*.lua.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as redis

from service.store import dedupe
from service.store.codecs import (
    KINDS,
    ServedList,
    decode_change,
    decode_clusters,
    decode_count_row,
    decode_counts,
    decode_item,
    decode_user,
    encode_clusters,
    encode_embedding,
    encode_item_meta,
    stats_field,
    text,
)
from service.store.connection import (
    connect,
    redis_errors_as_unavailable,
    register_script,
    replied,
    run_scripts,
    unavailable_on_redis_errors,
)
from service.store.keys import READINESS_PROBE_TTL_MS, Keys, tagged_id
from service.store.records import (
    ArmEvent,
    ClusterModel,
    CountChange,
    CountsState,
    ItemRecord,
    LoggedWrite,
    UserEvent,
    UserState,
    Verdict,
    Versions,
)


class DimensionMismatch(ValueError):
    """An embedding's length differs from the catalog's dimension."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"embedding has {got} dimensions, the catalog uses {expected}")
        self.expected = expected
        self.got = got


@dataclass(frozen=True, slots=True)
class LoggedList:
    """A served list read back with its rec_id and the outcomes flagged on it (imp:ITEM...)."""

    rec_id: str
    served: ServedList
    outcomes: frozenset[str]


class Store:
    """Named Redis operations for banditrec; every method is a bounded number of round trips."""

    def __init__(self, url: str, prefix: str = "br", timeout_s: float = 2.0) -> None:
        self.url = url
        self.prefix = prefix
        self.keys = Keys(prefix)
        self._redis = connect(url, timeout_s)
        self._upsert_items = register_script(self._redis, "upsert_items")
        self._delete_item = register_script(self._redis, "delete_item")
        self._record_counts = register_script(self._redis, "record_counts")
        self._record_user = register_script(self._redis, "record_user")

    @property
    def client(self) -> redis.Redis:
        """Return the Redis client (for the state export and import, which share it)."""
        return self._redis

    # -- lifecycle --------------------------------------------------------------------

    @unavailable_on_redis_errors
    async def ping(self) -> bool:
        """Return True when Redis answers."""
        return bool(await replied(self._redis.ping()))

    @unavailable_on_redis_errors
    async def memory(self) -> tuple[int, int]:
        """Return Redis's (used_memory, maxmemory) in bytes; maxmemory 0 means no limit."""
        info = await replied(self._redis.info("memory"))
        return int(info["used_memory"]), int(info.get("maxmemory", 0))

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
        """Delete every key of this database (tests only; `import --replace` deletes only
        this prefix's keys)."""
        await self._redis.flushdb()

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
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.item_meta, ids)
            for kind in KINDS:
                pipe.hmget(self.keys.arms(kind), ids)
            replies = await pipe.execute()
        return {
            i for i, *found in zip(ids, *replies, strict=True) if any(f is not None for f in found)
        }

    @unavailable_on_redis_errors
    async def load_items(self) -> tuple[int, list[ItemRecord]]:
        """Return (catalog version, every item), read in one transaction."""
        async with self._redis.pipeline(transaction=True) as pipe:
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
            pipe.get(self.keys.arms_version)
            pipe.hget(self.keys.clusters, "gen")
            items, arms, gen = await pipe.execute()
        return Versions(int(items or 0), int(arms or 0), int(gen or 0))

    @unavailable_on_redis_errors
    async def load_clusters(self) -> ClusterModel:
        """Return the current cluster model (generation 0, one cluster, before any fit)."""
        return decode_clusters(await replied(self._redis.hgetall(self.keys.clusters)))

    @unavailable_on_redis_errors
    async def load_counts(self, gen: int, k: int, *, with_times: bool = False) -> CountsState:
        """Return every count of clusters 0..k-1 then global, and the change stream position.

        With `with_times`, also when each count was last discounted (see CountsState).
        """
        rows = [(gen, c) for c in range(k)] + [(None, None)]
        keys = self.keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.arms_version)
            pipe.xrevrange(keys.changes, count=1)
            pipe.get(keys.decay_since)
            for g, cluster in rows:
                for kind in KINDS:
                    pipe.hgetall(keys.arms(kind, g, cluster))
                    if with_times:
                        pipe.hgetall(keys.arm_times(kind, g, cluster))
            version, last, since, *hashes = await pipe.execute()
        per_row = len(KINDS) * (1 + with_times)
        step = 1 + with_times
        grouped = [hashes[i : i + per_row] for i in range(0, len(hashes), per_row)]
        counts = [decode_count_row(row[0::step]) for row in grouped]
        updated = [decode_count_row(row[1::step]) for row in grouped] if with_times else None
        # The transaction makes the last entry the one that produced `version` (or none yet).
        stream_id = text(last[0][0]) if last else "0-0"
        decay_since = float(since) if since is not None else None
        return CountsState(int(version or 0), stream_id, counts, updated, decay_since)

    @unavailable_on_redis_errors
    async def read_changes(self, after_id: str, limit: int) -> list[CountChange]:
        """Return up to `limit` change entries newer than `after_id`, oldest first."""
        raw = await replied(self._redis.xrange(self.keys.changes, min=f"({after_id}", count=limit))
        return [decode_change(entry_id, fields) for entry_id, fields in raw]

    @unavailable_on_redis_errors
    async def arm_counts(
        self, item_id: str, gen: int, k: int
    ) -> tuple[list[tuple[float, ...]], list[tuple[float | None, ...]], float | None]:
        """Return one item's counts and their times, clusters 0..k-1 then global.

        Each row is (impressions, clicks, conversions) in stored units; the times say when
        each was last discounted (None: never); last comes the decay-since time, if any.
        """
        keys = self.keys
        async with self._redis.pipeline(transaction=True) as pipe:
            for cluster in [*range(k), None]:
                g = None if cluster is None else gen
                for kind in KINDS:
                    pipe.hget(keys.arms(kind, g, cluster), item_id)
                    pipe.hget(keys.arm_times(kind, g, cluster), item_id)
            pipe.get(keys.decay_since)
            *raw, since = await pipe.execute()
        values = [float(v or 0) for v in raw[0::2]]
        times = [None if t is None else float(t) for t in raw[1::2]]
        n = len(KINDS)
        return (
            [tuple(values[i : i + n]) for i in range(0, len(values), n)],
            [tuple(times[i : i + n]) for i in range(0, len(times), n)],
            None if since is None else float(since),
        )

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
            for policy, count in Counter(served.policy for _, served, _ in lists).items():
                pipe.hincrby(self.keys.stats, stats_field("lists", policy), count)
            for _, served, assignment in lists:
                if assignment is not None:
                    membership, assigned = assignment
                    user_state = self.keys.user(served.user_id, "state")
                    pipe.hset(user_state, mapping={"membership": membership, "assigned": assigned})
                    pipe.expire(user_state, user_ttl_s)
            await pipe.execute()

    @unavailable_on_redis_errors
    async def stats(self) -> dict[str, float]:
        """Return the per-policy counters (see service.serving.stats_fields) and `since`."""
        return decode_counts(await replied(self._redis.hgetall(self.keys.stats)))

    @unavailable_on_redis_errors
    async def reset_stats(self) -> None:
        """Forget the per-policy counters, e.g. after changing the mode."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.stats)
            pipe.hset(self.keys.stats, "since", repr(time.time()))
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
        one decision covers both (why a crash between them is repaired: store/dedupe.py).

        With `count_half_life_s` > 0 every count touched is first discounted to `now`
        (halved per half-life since it was last touched), then incremented. A user keeps
        at most `user_events_max` applied event ids and `user_items_max` items in each of
        its seen and last-click hashes (record_user.lua).
        """
        keys = self.keys
        counts = dedupe.count_call(
            keys,
            self._record_counts,
            arm_events,
            now=now,
            retention_s=retention_s,
            count_half_life_s=count_half_life_s,
        )
        (raw,) = await run_scripts(self._redis, [counts])
        verdicts = [Verdict(v) for v in raw]
        if Verdict.CLAIMED in verdicts:
            return verdicts
        applied = dedupe.applied(arm_events, verdicts)
        user_args = [now, seen_half_life_s, history_n, retention_s, user_ttl_s]
        user_args += [user_events_max, user_items_max]
        calls = dedupe.user_calls(keys, self._record_user, user_events, applied, user_args, now)
        commands = dedupe.outcome_commands(keys, applied, outcome_ttl_s)
        if calls or commands:
            await run_scripts(self._redis, calls, commands)
        return verdicts

    async def served_lists(self, batch: int = 500) -> AsyncIterator[list[LoggedList]]:
        """Yield batches of logged served lists (SCAN order), each with its outcome flags."""
        rec_ids: list[str] = []
        with redis_errors_as_unavailable():
            async for raw_key in self._redis.scan_iter(match=self.keys.every_rec, count=1000):
                rec_ids.append(tagged_id(text(raw_key)))
                if len(rec_ids) >= batch:
                    yield await self._served_batch(rec_ids)
                    rec_ids = []
            if rec_ids:
                yield await self._served_batch(rec_ids)

    async def _served_batch(self, rec_ids: list[str]) -> list[LoggedList]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for rec_id in rec_ids:
                pipe.get(self.keys.rec(rec_id))
                pipe.hgetall(self.keys.outcomes(rec_id))
            raw = await pipe.execute()
        lists = []
        for n, rec_id in enumerate(rec_ids):
            record, outcomes = raw[2 * n], raw[2 * n + 1]
            if record is None:  # expired between SCAN and GET
                continue
            flags = frozenset(text(f) for f in outcomes)
            lists.append(LoggedList(rec_id, ServedList.decode(record), flags))
        return lists

    # -- clusters ---------------------------------------------------------------------

    @unavailable_on_redis_errors
    async def user_histories(self, limit: int, history_n: int) -> dict[str, list[str]]:
        """Return up to `limit` users' click histories (SCAN order), for a k-means fit."""
        histories: dict[str, list[str]] = {}
        batch: list[str] = []

        async def flush() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.lrange(key, 0, history_n - 1)
                lists = await pipe.execute()
            for key, items in zip(batch, lists, strict=True):
                if items:
                    histories[tagged_id(key)] = [text(i) for i in items]
            batch.clear()

        pattern = self.keys.every_user_clicks
        async for raw_key in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(text(raw_key))
            if len(batch) >= 1000:
                await flush()
            if len(histories) + len(batch) >= limit:
                break
        if batch:
            await flush()
        return dict(list(histories.items())[:limit])

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
