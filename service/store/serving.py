"""All Redis access: the only module that imports redis.

Key schema (P = settings.key_prefix). A `{tag}` is a Redis Cluster hash tag: every
multi-key update below touches keys of one tag only, so it stays in one slot.

    P:{items}:meta                 hash  item_id -> JSON {tags, pools, active, updated}
    P:{items}:emb                  hash  item_id -> float32 bytes of the embedding
    P:{items}:info                 hash  dim, version (bumped on every catalog change)
    P:{arms}:imp|clk|cnv:G:C       hash  item_id -> impressions / clicks / conversions in
                                         millionths (soft membership credits a share),
                                         generation G, cluster C
    P:{arms}:imp|clk|cnv:global    hash  the same in events, over every cluster; whole
                                         numbers unless counts are discounted
    P:{arms}:at:imp|clk|cnv:...    hash  item_id -> when that count was last discounted
                                         (only with a count half-life)
    P:{arms}:decay_since           str   when discounting was first used: counts with no
                                         time of their own fade from then
    P:{arms}:version               int   bumped by every feedback batch that changed a count
    P:{arms}:changes               stream one entry per such batch: v (version), d (the new
                                         totals of every count it changed)
    P:{arms}:stats                 hash  per-policy served lists, impressions, clicks
    P:{arms}:ev:EVENT_ID           str   dedupe marker, expires after the retention
    P:{clusters}                   hash  gen, k, dim, centers (float32), inertia, sizes, fitted_at
    P:u:{USER}:state               hash  hist (clicks so far), membership, assigned (its gen:hist)
    P:u:{USER}:clicks              list  last N clicked item_ids, newest first
    P:u:{USER}:seen                hash  item_id -> "unclicked|updated_at" (decayed lazily)
    P:u:{USER}:events              zset  event_ids already applied to this user, scored by time
    P:u:{USER}:lastclick           hash  item_id -> "clicked_at|rec_id", to attribute conversions
    P:rec:{REC_ID}                 str   JSON of a served list, expires after the rec-log TTL
    P:rec:{REC_ID}:out             hash  imp:ITEM / clk:ITEM = 1 once feedback named the list
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import hiredis
import numpy as np
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.store.codecs import EVENT_KINDS, KINDS, ServedList

P = ParamSpec("P")
T = TypeVar("T")

GLOBAL = "global"
# Change entries older than this are trimmed; a worker further behind reloads in full.
CHANGES_RETENTION_S = 120


# What "Redis is down or not answering" looks like from redis-py.
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class StoreUnavailable(RuntimeError):
    """Redis could not be reached or did not answer in time."""


class DimensionMismatch(ValueError):
    """An embedding's length differs from the catalog's dimension."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"embedding has {got} dimensions, the catalog uses {expected}")
        self.expected = expected
        self.got = got


def _hiredis_pack_command(self: Any, *args: Any) -> list[bytes]:
    """Pack one command like redis-py's asyncio packer, in C (hiredis)."""
    if isinstance(args[0], str):
        args = (*args[0].encode().split(), *args[1:])
    elif b" " in args[0]:
        args = (*args[0].split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:
        raise DataError(str(exc)) from exc


def _packing_in_c(connection_class: type) -> type:
    """Return the connection class with hiredis packing (redis-py's asyncio side lacks it).

    A feedback batch is a few EVALSHAs with thousands of arguments; packing them in
    Python was ~80% of the service's CPU per event. The bytes are the same.
    """
    name = f"CPacked{connection_class.__name__}"
    return type(name, (connection_class,), {"pack_command": _hiredis_pack_command})


def _unavailable_on_redis_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    @wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except _REDIS_DOWN as exc:
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc

    return wrapper


# Upsert items atomically: check the shared dimension first, then write every item.
_UPSERT_ITEMS = """
local dim = tonumber(redis.call('HGET', KEYS[3], 'dim') or '0')
local new_dim = tonumber(ARGV[1])
if new_dim > 0 then
  if dim > 0 and dim ~= new_dim then
    return {0, dim}
  end
  if dim == 0 then redis.call('HSET', KEYS[3], 'dim', new_dim) end
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i + 2] == '' then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
redis.call('HINCRBY', KEYS[3], 'version', 1)
return {1, new_dim}
"""

# Remove an item from the catalog; its arm counts stay. An empty catalog forgets its dim.
_DELETE_ITEM = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 1 then
  redis.call('HINCRBY', KEYS[3], 'version', 1)
  if redis.call('HLEN', KEYS[1]) == 0 then redis.call('HDEL', KEYS[3], 'dim') end
end
return removed
"""

# Dedupe and count in one script, so no crash can separate the two. Each accepted event's
# new totals (not deltas: discounting makes a total depend on when it was last updated)
# are appended, as one stream entry per batch, so snapshots can catch up without a reload.
# KEYS[1] arms version, KEYS[2] changes stream, KEYS[3] stats hash, KEYS[4] decay-since;
# then per event: its dedupe key, then the global count key and one per credited cluster,
# each followed by its time key when discounting. ARGV[1] retention s, ARGV[2] oldest
# stream id to keep, ARGV[3] now, ARGV[4] count half-life s (0 = keep every event); then
# per event: item, gen, kind, m, n_stats, m (cluster, millionths) pairs, n_stats stats
# fields to count. Returns 1/0 per event (new / replay).
_RECORD_COUNTS = """
local ttl = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
local half_life = tonumber(ARGV[4])
local stride, stamp, since = 1, '', now
if half_life > 0 then
  stride, stamp = 2, ARGV[3]
  -- counts written before discounting was turned on start to fade from that moment
  redis.call('SET', KEYS[4], ARGV[3], 'NX')
  since = tonumber(redis.call('GET', KEYS[4]))
end
local function add(ki, item, delta)
  if half_life == 0 then
    return redis.call('HINCRBYFLOAT', KEYS[ki], item, delta)
  end
  local value = tonumber(redis.call('HGET', KEYS[ki], item) or '0')
  local at = tonumber(redis.call('HGET', KEYS[ki + 1], item) or since)
  value = value * math.pow(0.5, math.max(now - at, 0) / half_life) + tonumber(delta)
  local text = string.format('%.17g', value)
  redis.call('HSET', KEYS[ki], item, text)
  redis.call('HSET', KEYS[ki + 1], item, stamp)
  return text
end
local flags, tokens, counted = {}, {}, false
local ki, ai = 5, 5
while ai <= #ARGV do
  local item, gen, kind = ARGV[ai], ARGV[ai + 1], ARGV[ai + 2]
  local m, n_stats = tonumber(ARGV[ai + 3]), tonumber(ARGV[ai + 4])
  if redis.call('SET', KEYS[ki], '1', 'NX', 'EX', ttl) then
    local total = add(ki + 1, item, 1)
    local parts = {}
    for j = 1, m do
      parts[j] = ARGV[ai + 3 + 2 * j] .. ':' .. add(ki + 1 + stride * j, item, ARGV[ai + 4 + 2 * j])
    end
    counted = counted or n_stats > 0
    for j = 1, n_stats do
      redis.call('HINCRBY', KEYS[3], ARGV[ai + 4 + 2 * m + j], 1)
    end
    flags[#flags + 1] = 1
    local clusters = table.concat(parts, ',')
    tokens[#tokens + 1] = table.concat({gen, kind, stamp, total, clusters, item}, '|')
  else
    flags[#flags + 1] = 0
  end
  ki = ki + 1 + stride * (1 + m)
  ai = ai + 5 + 2 * m + n_stats
end
if counted then redis.call('HSETNX', KEYS[3], 'since', ARGV[3]) end
if #tokens > 0 then
  local version = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*',
             'v', version, 'd', table.concat(tokens, '\\n'))
end
return flags
"""

# One user's share of a batch: seen decay, click history and last click per item (for
# attributing conversions), deduped per user. KEYS: state, seen, clicks, events,
# lastclick. ARGV: now, half_life_s, history_n, retention_s, user_ttl_s, then
# (event_id, type, item_id, rec_id or '') quadruples, impressions before clicks.
_RECORD_USER = """
local now = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local history_n = tonumber(ARGV[3])
local retention = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - retention)
local clicked = 0
for i = 6, #ARGV, 4 do
  local event_id, kind, item, rec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('ZADD', KEYS[4], 'NX', now, event_id) == 1 then
    if kind == 'conversion' then
      -- a purchase changes neither what the user has seen nor their taste history
    elseif kind == 'impression' then
      local n = 0
      local old = redis.call('HGET', KEYS[2], item)
      if old then
        local sep = string.find(old, '|', 1, true)
        local t = tonumber(string.sub(old, sep + 1))
        n = tonumber(string.sub(old, 1, sep - 1)) * math.pow(0.5, math.max(now - t, 0) / half_life)
      end
      redis.call('HSET', KEYS[2], item, string.format('%.6f|%.3f', n + 1, now))
    else
      redis.call('HDEL', KEYS[2], item)
      redis.call('LPUSH', KEYS[3], item)
      redis.call('HSET', KEYS[5], item, string.format('%.3f|%s', now, rec))
      clicked = clicked + 1
    end
  end
end
if clicked > 0 then
  redis.call('LTRIM', KEYS[3], 0, history_n - 1)
  redis.call('HINCRBY', KEYS[1], 'hist', clicked)
end
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
return clicked
"""


@dataclass(frozen=True, slots=True)
class LoggedList:
    """A served list read back with its rec_id and the outcomes flagged on it (imp:ITEM...)."""

    rec_id: str
    served: ServedList
    outcomes: frozenset[str]


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One catalog item as stored."""

    item_id: str
    tags: list[str]
    pools: list[str]
    active: bool
    updated: float
    embedding: np.ndarray | None


@dataclass(frozen=True, slots=True)
class ClusterModel:
    """The fitted k-means centres; generation 0 means no fit yet (one cluster)."""

    gen: int = 0
    k: int = 1
    centers: np.ndarray | None = None
    inertia: float | None = None
    sizes: list[int] = field(default_factory=list)
    fitted_at: float | None = None


@dataclass(frozen=True, slots=True)
class UserState:
    """What the service keeps about one user."""

    hist: int = 0
    membership: str | None = None
    assigned: str | None = None
    clicks: list[str] = field(default_factory=list)
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)
    # item_id -> (clicked_at, rec_id of the list it was clicked in, or None)
    last_clicks: dict[str, tuple[float, str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Versions:
    """Change counters that tell the snapshot what to reload."""

    items: int
    arms: int
    clusters: int


Counts = tuple[dict[str, float], dict[str, float], dict[str, float]]  # imp, clk, cnv


@dataclass(frozen=True, slots=True)
class CountsState:
    """All counts at one version, and the id of the change entry that produced it.

    `counts` has one (imp, clk, cnv) triple per row: clusters 0..k-1, then global.
    `updated` holds, in the same layout, when each count was last discounted (only read
    when discounting); `decay_since` is when discounting was first used, if ever.
    """

    version: int
    stream_id: str
    counts: list[Counts]
    updated: list[Counts] | None = None
    decay_since: float | None = None


@dataclass(frozen=True, slots=True)
class CountTotal:
    """One accepted event's new totals: global, and per credited cluster of generation gen."""

    gen: int
    kind: str  # imp | clk | cnv
    item_id: str
    total: float
    clusters: tuple[tuple[int, float], ...]
    at: float | None  # when discounted to these totals; None without discounting


@dataclass(frozen=True, slots=True)
class CountChange:
    """One feedback batch's accepted events, as the totals they left behind, in order."""

    stream_id: str
    version: int
    totals: list[CountTotal]


@dataclass(frozen=True, slots=True)
class ArmEvent:
    """One deduplicated counter update: event_id credits item in generation gen's clusters.

    `shares` are (cluster, millionths of the event) pairs summing to one million; `stats`
    are fields of the stats hash to count once if the event is new.
    """

    event_id: str
    kind: str
    item_id: str
    gen: int
    shares: tuple[tuple[int, int], ...]
    stats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One event's effect on a user's seen decay, history and last clicks."""

    event_id: str
    kind: str
    item_id: str
    rec_id: str | None = None


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _embedding_bytes(embedding: Sequence[float] | None) -> bytes:
    return b"" if embedding is None else np.asarray(embedding, dtype="<f4").tobytes()


def _embedding_array(raw: bytes | None) -> np.ndarray | None:
    return None if not raw else np.frombuffer(raw, dtype="<f4").astype(np.float64)


def _item_record(item_id: str, meta: bytes, emb: bytes | None) -> ItemRecord:
    fields = json.loads(meta)
    return ItemRecord(
        item_id=item_id,
        tags=fields["tags"],
        pools=fields["pools"],
        active=fields["active"],
        updated=fields["updated"],
        embedding=_embedding_array(emb),
    )


def _counts(raw: dict[bytes, bytes]) -> dict[str, float]:
    # float() reads both whole counts and discounted ones, exactly as they were written.
    return {_decode(k): float(v) for k, v in raw.items()}


def _count_total(token: str) -> CountTotal:
    gen, kind, at, total, clusters, item_id = token.split("|", 5)
    return CountTotal(
        gen=int(gen),
        kind=kind,
        item_id=item_id,
        total=float(total),
        clusters=tuple(
            (int(c), float(v)) for c, v in (part.split(":") for part in clusters.split(",") if part)
        ),
        at=float(at) if at else None,
    )


class Store:
    """Named Redis operations for banditrec; every method is a bounded number of round trips."""

    def __init__(self, url: str, prefix: str = "br", timeout_s: float = 2.0) -> None:
        self.url = url
        self.prefix = prefix
        self._redis: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
        pool = self._redis.connection_pool
        pool.connection_class = _packing_in_c(pool.connection_class)
        self._upsert_items = self._redis.register_script(_UPSERT_ITEMS)
        self._delete_item = self._redis.register_script(_DELETE_ITEM)
        self._record_counts = self._redis.register_script(_RECORD_COUNTS)
        self._record_user = self._redis.register_script(_RECORD_USER)

    # -- keys -------------------------------------------------------------------------

    def _items_key(self, part: str) -> str:
        return f"{self.prefix}:{{items}}:{part}"

    def _arms_key(self, kind: str, gen: int | None = None, cluster: int | None = None) -> str:
        if gen is None:
            return f"{self.prefix}:{{arms}}:{kind}:{GLOBAL}"
        return f"{self.prefix}:{{arms}}:{kind}:{gen}:{cluster}"

    def _at_key(self, kind: str, gen: int | None = None, cluster: int | None = None) -> str:
        return self._arms_key(f"at:{kind}", gen, cluster)

    def _user_key(self, user_id: str, part: str) -> str:
        return f"{self.prefix}:u:{{{user_id}}}:{part}"

    def _user_keys(self, user_id: str) -> list[str]:
        parts = ("state", "seen", "clicks", "events", "lastclick")
        return [self._user_key(user_id, p) for p in parts]

    def _rec_key(self, rec_id: str) -> str:
        return f"{self.prefix}:rec:{{{rec_id}}}"

    def _outcome_key(self, rec_id: str) -> str:
        return f"{self.prefix}:rec:{{{rec_id}}}:out"

    @property
    def _clusters_key(self) -> str:
        return f"{self.prefix}:{{clusters}}"

    @property
    def _arms_version_key(self) -> str:
        return f"{self.prefix}:{{arms}}:version"

    @property
    def _changes_key(self) -> str:
        return f"{self.prefix}:{{arms}}:changes"

    @property
    def _stats_key(self) -> str:
        return f"{self.prefix}:{{arms}}:stats"

    @property
    def _decay_since_key(self) -> str:
        return f"{self.prefix}:{{arms}}:decay_since"

    # -- lifecycle --------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def ping(self) -> bool:
        """Return True when Redis answers."""
        return bool(await self._redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    @_unavailable_on_redis_errors
    async def flush(self) -> None:
        """Delete every key of this database (tests only; `import --replace` deletes only
        this prefix's keys)."""
        await self._redis.flushdb()

    # -- catalog ----------------------------------------------------------------------

    @_unavailable_on_redis_errors
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
            argv += [item_id, json.dumps(meta, separators=(",", ":")), _embedding_bytes(embedding)]
        keys = [self._items_key("meta"), self._items_key("emb"), self._items_key("info")]
        ok, dim = await self._upsert_items(keys=keys, args=argv)
        if not ok:
            raise DimensionMismatch(int(dim), new_dim)
        return int(dim)

    @_unavailable_on_redis_errors
    async def get_item(self, item_id: str) -> ItemRecord | None:
        """Return one item, or None if it is not in the catalog."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._items_key("meta"), item_id)
            pipe.hget(self._items_key("emb"), item_id)
            meta, emb = await pipe.execute()
        return None if meta is None else _item_record(item_id, meta, emb)

    @_unavailable_on_redis_errors
    async def delete_item(self, item_id: str) -> bool:
        """Remove an item from the catalog (its counts stay); return whether it existed."""
        keys = [self._items_key("meta"), self._items_key("emb"), self._items_key("info")]
        return bool(await self._delete_item(keys=keys, args=[item_id]))

    @_unavailable_on_redis_errors
    async def existing_items(self, item_ids: Sequence[str]) -> set[str]:
        """Return the subset of item_ids that are in the catalog."""
        if not item_ids:
            return set()
        found = await self._redis.hmget(self._items_key("meta"), list(item_ids))
        return {i for i, meta in zip(item_ids, found, strict=True) if meta is not None}

    @_unavailable_on_redis_errors
    async def catalog_dim(self) -> int:
        """Return the catalog's embedding dimension, 0 before the first embedding."""
        return int(await self._redis.hget(self._items_key("info"), "dim") or 0)

    @_unavailable_on_redis_errors
    async def load_items(self) -> tuple[int, list[ItemRecord]]:
        """Return (catalog version, every item), read in one transaction."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._items_key("info"), "version")
            pipe.hgetall(self._items_key("meta"))
            pipe.hgetall(self._items_key("emb"))
            version, metas, embs = await pipe.execute()
        items = [
            _item_record(_decode(item_id), meta, embs.get(item_id))
            for item_id, meta in metas.items()
        ]
        return int(version or 0), items

    # -- snapshot reads ---------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def versions(self) -> Versions:
        """Return the change counters of catalog, counts and clusters in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._items_key("info"), "version")
            pipe.get(self._arms_version_key)
            pipe.hget(self._clusters_key, "gen")
            items, arms, gen = await pipe.execute()
        return Versions(int(items or 0), int(arms or 0), int(gen or 0))

    @_unavailable_on_redis_errors
    async def load_clusters(self) -> ClusterModel:
        """Return the current cluster model (generation 0, one cluster, before any fit)."""
        raw = await self._redis.hgetall(self._clusters_key)
        if not raw:
            return ClusterModel()
        fields = {_decode(k): v for k, v in raw.items()}
        k, dim = int(fields["k"]), int(fields["dim"])
        centers = np.frombuffer(fields["centers"], dtype="<f4").astype(np.float64)
        return ClusterModel(
            gen=int(fields["gen"]),
            k=k,
            centers=centers.reshape(k, dim),
            inertia=float(fields["inertia"]),
            sizes=json.loads(fields["sizes"]),
            fitted_at=float(fields["fitted_at"]),
        )

    @_unavailable_on_redis_errors
    async def load_counts(self, gen: int, k: int, *, with_times: bool = False) -> CountsState:
        """Return every count of clusters 0..k-1 then global, and the change stream position.

        With `with_times`, also when each count was last discounted (see CountsState).
        """
        rows = [(gen, c) for c in range(k)] + [(None, None)]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._arms_version_key)
            pipe.xrevrange(self._changes_key, count=1)
            pipe.get(self._decay_since_key)
            for g, cluster in rows:
                for kind in KINDS:
                    pipe.hgetall(self._arms_key(kind, g, cluster))
                    if with_times:
                        pipe.hgetall(self._at_key(kind, g, cluster))
            version, last, since, *hashes = await pipe.execute()
        per_row = len(KINDS) * (1 + with_times)
        step = 1 + with_times
        grouped = [hashes[i : i + per_row] for i in range(0, len(hashes), per_row)]
        counts = [_triple(row[0::step]) for row in grouped]
        updated = [_triple(row[1::step]) for row in grouped] if with_times else None
        # The transaction makes the last entry the one that produced `version` (or none yet).
        stream_id = _decode(last[0][0]) if last else "0-0"
        decay_since = float(since) if since is not None else None
        return CountsState(int(version or 0), stream_id, counts, updated, decay_since)

    @_unavailable_on_redis_errors
    async def read_changes(self, after_id: str, limit: int) -> list[CountChange]:
        """Return up to `limit` change entries newer than `after_id`, oldest first."""
        raw = await self._redis.xrange(self._changes_key, min=f"({after_id}", count=limit)
        changes = []
        for entry_id, fields in raw:
            fields = {_decode(k): _decode(v) for k, v in fields.items()}
            totals = [_count_total(token) for token in fields["d"].split("\n")]
            changes.append(CountChange(_decode(entry_id), int(fields["v"]), totals))
        return changes

    @_unavailable_on_redis_errors
    async def arm_counts(
        self, item_id: str, gen: int, k: int
    ) -> tuple[list[tuple[float, ...]], list[tuple[float | None, ...]], float | None]:
        """Return one item's counts and their times, clusters 0..k-1 then global.

        Each row is (impressions, clicks, conversions) in stored units; the times say when
        each was last discounted (None: never); last comes the decay-since time, if any.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            for cluster in [*range(k), None]:
                g = None if cluster is None else gen
                for kind in KINDS:
                    pipe.hget(self._arms_key(kind, g, cluster), item_id)
                    pipe.hget(self._at_key(kind, g, cluster), item_id)
            pipe.get(self._decay_since_key)
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

    @_unavailable_on_redis_errors
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
            for user_id in user_ids:
                state, seen, clicks, _, last_clicks = self._user_keys(user_id)
                pipe.hgetall(state)
                pipe.lrange(clicks, 0, history_n - 1)
                if with_seen:
                    pipe.hgetall(seen)
                if user_id in last_clicks_of:
                    pipe.hgetall(last_clicks)
            pipe.hget(self._items_key("info"), "version")
            pipe.hget(self._clusters_key, "gen")
            *raw, items_version, gen = await pipe.execute()
        users = {}
        replies = iter(raw)
        for user_id in user_ids:
            state, clicks = next(replies), next(replies)
            seen = next(replies) if with_seen else {}
            last_clicks = next(replies) if user_id in last_clicks_of else {}
            users[user_id] = _user_state(state, clicks, seen, last_clicks)
        return users, int(items_version or 0), int(gen or 0)

    @_unavailable_on_redis_errors
    async def read_rec_logs(self, rec_ids: Sequence[str]) -> dict[str, ServedList]:
        """Return the logged served lists that still exist, by rec_id."""
        if not rec_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for rec_id in rec_ids:
                pipe.get(self._rec_key(rec_id))
            raw = await pipe.execute()
        return {r: ServedList.decode(v) for r, v in zip(rec_ids, raw, strict=True) if v is not None}

    @_unavailable_on_redis_errors
    async def log_recommendation(
        self,
        rec_id: str,
        served: ServedList,
        ttl_s: int,
        assignment: tuple[str, str] | None,
        user_ttl_s: int,
    ) -> None:
        """Store a served list under rec_id, count it for its policy and, if given, cache
        the user's (membership, key)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._rec_key(rec_id), served.encode(), ex=ttl_s)
            pipe.hincrby(self._stats_key, f"lists:{served.policy}", 1)
            if assignment is not None:
                membership, assigned = assignment
                state = self._user_key(served.user_id, "state")
                pipe.hset(state, mapping={"membership": membership, "assigned": assigned})
                pipe.expire(state, user_ttl_s)
            await pipe.execute()

    @_unavailable_on_redis_errors
    async def stats(self) -> dict[str, float]:
        """Return the per-policy counters (see service.serving.stats_fields) and `since`."""
        raw = await self._redis.hgetall(self._stats_key)
        return {_decode(k): float(v) for k, v in raw.items()}

    @_unavailable_on_redis_errors
    async def reset_stats(self) -> None:
        """Forget the per-policy counters, e.g. after changing the mode."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._stats_key)
            pipe.hset(self._stats_key, "since", repr(time.time()))
            await pipe.execute()

    # -- feedback ---------------------------------------------------------------------

    @_unavailable_on_redis_errors
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
        outcomes: dict[str, set[str]] | None = None,
        outcome_ttl_s: int = 0,
        count_half_life_s: float = 0.0,
    ) -> list[bool]:
        """Apply a validated batch; return, per arm event, whether it was new (not a replay).

        `outcomes` maps logged rec_ids to fields (imp:ITEM, clk:ITEM) to flag on the served
        list, for off-policy evaluation; flags are idempotent, so replays change nothing.

        With `count_half_life_s` > 0 every count touched is first discounted to `now`
        (halved per half-life since it was last touched), then incremented.

        Counts and user state live in different slots, so each has its own dedupe and
        script; both are sent in one round trip. A failure between them is repaired by
        the client's retry: each side skips what it already applied.
        """
        count_keys = [
            self._arms_version_key,
            self._changes_key,
            self._stats_key,
            self._decay_since_key,
        ]
        # Stream ids come from the Redis clock, so trim by wall time, not the events' `now`.
        oldest_ms = int((time.time() - CHANGES_RETENTION_S) * 1000)
        count_args: list[Any] = [retention_s, f"{oldest_ms}-0", repr(now), count_half_life_s]
        discounting = count_half_life_s > 0
        for event in arm_events:
            kind = EVENT_KINDS[event.kind]
            count_keys.append(f"{self.prefix}:{{arms}}:ev:{event.event_id}")
            for g, c in [(None, None), *((event.gen, c) for c, _ in event.shares)]:
                count_keys.append(self._arms_key(kind, g, c))
                if discounting:
                    count_keys.append(self._at_key(kind, g, c))
            count_args += [event.item_id, event.gen, kind, len(event.shares), len(event.stats)]
            count_args += [x for share in event.shares for x in share]
            count_args += event.stats
        calls: list[tuple[Any, list[str], list[Any]]] = [
            (self._record_counts, count_keys, count_args)
        ]
        for user_id, events in user_events.items():
            # Impressions first: a batch with both an impression and a click of one
            # item must end with the item not penalised.
            ordered = sorted(events, key=lambda e: e.kind != "impression")
            args: list[Any] = [now, seen_half_life_s, history_n, retention_s, user_ttl_s]
            for event in ordered:
                args += [event.event_id, event.kind, event.item_id, event.rec_id or ""]
            calls.append((self._record_user, self._user_keys(user_id), args))
        commands = [
            ("HSET", self._outcome_key(rec_id), *[x for f in sorted(fields) for x in (f, 1)])
            for rec_id, fields in (outcomes or {}).items()
        ] + [("EXPIRE", self._outcome_key(rec_id), outcome_ttl_s) for rec_id in outcomes or {}]
        flags, *_ = await self._eval_many(calls, commands)
        return [bool(f) for f in flags]

    async def _eval_many(
        self,
        calls: Sequence[tuple[Any, list[str], list[Any]]],
        commands: Sequence[tuple[Any, ...]] = (),
    ) -> list[Any]:
        """Run scripts by EVALSHA, then idempotent commands, in one round trip; return results."""
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                for command in commands:
                    pipe.execute_command(*command)
                try:
                    return list(await pipe.execute())
                except NoScriptError:
                    # Redis restarted and lost its script cache. Scripts that did run
                    # skip their events on the retry, because every script dedupes.
                    if attempt == 2:
                        raise
            for script in {id(c[0]): c[0] for c in calls}.values():
                await self._redis.script_load(script.script)
        raise AssertionError("unreachable")

    async def served_lists(self, batch: int = 500) -> AsyncIterator[list[LoggedList]]:
        """Yield batches of logged served lists (SCAN order), each with its outcome flags."""
        keys: list[str] = []
        try:
            # The pattern ends in '}' so the ':out' hashes are not listed as lists.
            pattern = f"{self.prefix}:rec:{{*}}"
            async for raw_key in self._redis.scan_iter(match=pattern, count=1000):
                keys.append(_decode(raw_key))
                if len(keys) >= batch:
                    yield await self._served_batch(keys)
                    keys = []
            if keys:
                yield await self._served_batch(keys)
        except _REDIS_DOWN as exc:
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc

    async def _served_batch(self, keys: list[str]) -> list[LoggedList]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.hgetall(f"{key}:out")
            raw = await pipe.execute()
        lists = []
        for n, key in enumerate(keys):
            record, outcomes = raw[2 * n], raw[2 * n + 1]
            if record is None:  # expired between SCAN and GET
                continue
            rec_id = key[key.index("{") + 1 : key.rindex("}")]
            flags = frozenset(_decode(f) for f in outcomes)
            lists.append(LoggedList(rec_id, ServedList.decode(record), flags))
        return lists

    # -- clusters ---------------------------------------------------------------------

    @_unavailable_on_redis_errors
    async def user_histories(self, limit: int, history_n: int) -> dict[str, list[str]]:
        """Return up to `limit` users' click histories (SCAN order), for a k-means fit."""
        histories: dict[str, list[str]] = {}
        pattern = f"{self.prefix}:u:{{*}}:clicks"
        batch: list[str] = []

        async def flush() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.lrange(key, 0, history_n - 1)
                lists = await pipe.execute()
            for key, items in zip(batch, lists, strict=True):
                user_id = key[key.index("{") + 1 : key.rindex("}")]
                if items:
                    histories[user_id] = [_decode(i) for i in items]
            batch.clear()

        async for raw_key in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(_decode(raw_key))
            if len(batch) >= 1000:
                await flush()
            if len(histories) + len(batch) >= limit:
                break
        if batch:
            await flush()
        return dict(list(histories.items())[:limit])

    @_unavailable_on_redis_errors
    async def save_clusters(
        self, centers: np.ndarray, inertia: float, sizes: list[int]
    ) -> ClusterModel:
        """Store new centres as the next generation; return the stored model."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._clusters_key, "gen", 1)
            pipe.hset(
                self._clusters_key,
                mapping={
                    "k": centers.shape[0],
                    "dim": centers.shape[1],
                    "centers": np.asarray(centers, dtype="<f4").tobytes(),
                    "inertia": repr(float(inertia)),
                    "sizes": json.dumps(sizes),
                    "fitted_at": repr(time.time()),
                },
            )
            gen, _ = await pipe.execute()
        return ClusterModel(
            gen=int(gen),
            k=int(centers.shape[0]),
            centers=np.asarray(centers, dtype=np.float64),
            inertia=float(inertia),
            sizes=sizes,
            fitted_at=time.time(),
        )

    # -- state export/import ---------------------------------------------------------

    def _marker_key(self, event_id: str) -> str:
        return f"{self.prefix}:{{arms}}:ev:{event_id}"

    @_unavailable_on_redis_errors
    async def read_state(self) -> StateSnapshot:
        """Return catalog, clustering, counters and the current generation's counts at once."""
        for _ in range(_STATE_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                # A fit between reading the clustering and reading the counts would pair one
                # generation with another's counts; WATCH turns that into a retry.
                await pipe.watch(self._clusters_key)
                clusters = await self.load_clusters()
                rows = [(kind, c) for c in [*range(clusters.k), None] for kind in KINDS]
                pipe.multi()
                pipe.time()
                pipe.hget(self._items_key("info"), "version")
                pipe.get(self._arms_version_key)
                pipe.get(self._decay_since_key)
                pipe.hgetall(self._stats_key)
                pipe.hgetall(self._items_key("meta"))
                pipe.hgetall(self._items_key("emb"))
                for kind, cluster in rows:
                    gen = None if cluster is None else clusters.gen
                    pipe.hgetall(self._arms_key(kind, gen, cluster))
                    pipe.hgetall(self._at_key(kind, gen, cluster))
                try:
                    now, items_v, arms_v, since, stats, metas, embs, *hashes = await pipe.execute()
                except redis.WatchError:
                    continue
            return StateSnapshot(
                at_ms=_unix_ms(now),
                items_version=int(items_v or 0),
                arms_version=int(arms_v or 0),
                items=[_item_record(_decode(i), meta, embs.get(i)) for i, meta in metas.items()],
                clusters=clusters,
                counts={row: _text_map(h) for row, h in zip(rows, hashes[0::2], strict=True)},
                times={row: _text_map(h) for row, h in zip(rows, hashes[1::2], strict=True)},
                decay_since=None if since is None else _decode(since),
                stats=_text_map(stats),
            )
        raise StateChanged("the clustering changed during every attempt to read the state")

    async def dedupe_markers(
        self, set_by_ms: int, retention_s: int, batch: int = 1000
    ) -> AsyncIterator[list[tuple[str, int]]]:
        """Yield batches of (event_id, expiry in unix ms) of the markers set by `set_by_ms`.

        A marker's setting time is its expiry minus the retention. Markers set later (and
        before this scan) belong to events counted after a read_state, so they are left out:
        the file's markers and counts then agree.
        """
        pattern = self._marker_key("*")
        keys: list[str] = []
        try:
            async for raw_key in self._redis.scan_iter(match=pattern, count=1000):
                keys.append(_decode(raw_key))
                if len(keys) >= batch:
                    yield await self._marker_expiries(keys, set_by_ms, retention_s)
                    keys = []
            if keys:
                yield await self._marker_expiries(keys, set_by_ms, retention_s)
        except _REDIS_DOWN as exc:
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc

    async def _marker_expiries(
        self, keys: list[str], set_by_ms: int, retention_s: int
    ) -> list[tuple[str, int]]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.time()
            for key in keys:
                pipe.pttl(key)
            now, *ttls = await pipe.execute()
        now_ms, start = _unix_ms(now), len(self._marker_key(""))
        markers = []
        for key, ttl in zip(keys, ttls, strict=True):
            expires_ms = now_ms + ttl
            set_at_ms = expires_ms - retention_s * 1000
            # ttl < 0: expired since the SCAN (-2), or no expiry (-1): not a banditrec marker.
            if ttl >= 0 and not set_by_ms < set_at_ms <= now_ms:
                markers.append((key[start:], expires_ms))
        return markers

    async def stored_users(self, batch: int = 500) -> AsyncIterator[list[StoredUser]]:
        """Yield batches of users' stored state as text (SCAN order), each user once."""
        listed: set[str] = set()
        pending: list[str] = []
        try:
            async for raw_key in self._redis.scan_iter(match=self._user_key("*", "*"), count=1000):
                key = _decode(raw_key)
                user_id = key[key.index("{") + 1 : key.rindex("}")]
                if user_id not in listed:
                    listed.add(user_id)
                    pending.append(user_id)
                if len(pending) >= batch:
                    yield await self._stored_users(pending)
                    pending = []
            if pending:
                yield await self._stored_users(pending)
        except _REDIS_DOWN as exc:
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc

    async def _stored_users(self, user_ids: list[str]) -> list[StoredUser]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.time()
            for user_id in user_ids:
                state, seen, clicks, events, last_clicks = keys = self._user_keys(user_id)
                pipe.hgetall(state)
                pipe.lrange(clicks, 0, -1)
                pipe.hgetall(seen)
                pipe.zrange(events, 0, -1, withscores=True)
                pipe.hgetall(last_clicks)
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
                    state=_text_map(state),
                    clicks=[_decode(c) for c in clicks],
                    seen=_text_map(seen),
                    events=[(_decode(e), float(score)) for e, score in events],
                    last_clicks=_text_map(last_clicks),
                    expires_ms=None if -1 in live else _unix_ms(now) + max(live),
                )
            )
        return users

    @_unavailable_on_redis_errors
    async def write_state(self, state: StateWrite, planned_gen: int, *, replace: bool) -> None:
        """Write an imported state in one transaction; with `replace`, instead of the prefix's keys.

        Its counters end above the store's when it is written. Raises StateNotEmpty (without
        `replace`) if the store holds items, counts or clusters, and StateChanged if the
        clustering generation is no longer `planned_gen`; either way nothing is written.
        """
        doomed: list[str] = []
        if replace:
            # Keys created after this scan outlive the import: replace a store at rest.
            everything = self._redis.scan_iter(match=f"{self.prefix}:*", count=1000)
            doomed = [_decode(key) async for key in everything]
        async with self._redis.pipeline(transaction=True) as pipe:
            # A catalog change or a fit from here on makes EXEC fail, so what is read below
            # still holds when the transaction runs. Counted events are not watched, so a busy
            # store cannot starve an import: the catalog's new version reloads workers anyway.
            await pipe.watch(self._items_key("info"), self._clusters_key)
            current = await self.versions()
            if current.clusters != planned_gen:
                raise StateChanged("a clustering was fitted since the import was planned")
            if not replace:
                present = await self._present_state()
                if present:
                    raise StateNotEmpty(present)
                doomed = self._import_targets(state)
            now_ms = _unix_ms(await self._redis.time())
            pipe.multi()
            for chunk in _chunks(doomed):
                pipe.unlink(*chunk)
            self._queue_state(pipe, state, current, now_ms)
            try:
                await pipe.execute()
            except redis.WatchError as exc:
                raise StateChanged("the store changed during the import") from exc

    async def _present_state(self) -> list[str]:
        """Return, as phrases, which of items, counts and clusters the store holds."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(self._items_key("meta"))
            # Every counted event is counted in the global arms, so these hold any count.
            pipe.exists(*(self._arms_key(kind) for kind in KINDS))
            pipe.hget(self._clusters_key, "gen")
            n_items, n_counts, gen = await pipe.execute()
        present = [f"{n_items} items"] if n_items else []
        present += ["arm counts"] if n_counts else []
        present += [f"clusters (generation {int(gen)})"] if gen is not None else []
        return present

    def _import_targets(self, state: StateWrite) -> list[str]:
        """Return every key an import writes or must clear, short of the whole prefix."""
        keys = [self._items_key(part) for part in ("meta", "emb", "info")]
        keys += [self._clusters_key, self._arms_version_key, self._changes_key]
        keys += [self._decay_since_key, self._stats_key]
        for kind, cluster in {*state.counts, *state.times}:
            gen = None if cluster is None else state.gen
            keys += [self._arms_key(kind, gen, cluster), self._at_key(kind, gen, cluster)]
        for user in state.users:
            keys += self._user_keys(user.user_id)
        return keys

    def _queue_state(self, pipe: Any, state: StateWrite, current: Versions, now_ms: int) -> None:
        """Queue the writes of an imported state on a transaction; the changes stream stays gone."""
        metas: dict[str, str] = {}
        embeddings: dict[str, bytes] = {}
        for item in state.items:
            metas[item.item_id] = json.dumps(_item_meta(item), separators=(",", ":"))
            if item.embedding is not None:
                embeddings[item.item_id] = np.asarray(item.embedding, dtype="<f4").tobytes()
        _hset_all(pipe, self._items_key("meta"), metas)
        _hset_all(pipe, self._items_key("emb"), embeddings)
        info = {"version": max(state.items_version, current.items + 1)}
        if state.dim:
            info["dim"] = state.dim
        pipe.hset(self._items_key("info"), mapping=info)
        if state.clusters is not None:
            pipe.hset(self._clusters_key, mapping=_cluster_fields(state.clusters))
        for (kind, cluster), values in state.counts.items():
            gen = None if cluster is None else state.gen
            _hset_all(pipe, self._arms_key(kind, gen, cluster), values)
        for (kind, cluster), times in state.times.items():
            gen = None if cluster is None else state.gen
            _hset_all(pipe, self._at_key(kind, gen, cluster), times)
        pipe.set(self._arms_version_key, max(state.arms_version, current.arms + 1))
        if state.decay_since is not None:
            pipe.set(self._decay_since_key, state.decay_since)
        _hset_all(pipe, self._stats_key, state.stats)
        for event_id, expires_ms in state.dedupe:
            if expires_ms > now_ms:
                pipe.set(self._marker_key(event_id), "1", pxat=expires_ms)
        for user in state.users:
            if user.expires_ms is None or user.expires_ms > now_ms:
                self._queue_user(pipe, user)

    def _queue_user(self, pipe: Any, user: StoredUser) -> None:
        keys = self._user_keys(user.user_id)
        state, seen, clicks, events, last_clicks = keys
        _hset_all(pipe, state, user.state)
        _hset_all(pipe, seen, user.seen)
        _hset_all(pipe, last_clicks, user.last_clicks)
        if user.clicks:
            pipe.rpush(clicks, *user.clicks)
        if user.events:
            pipe.zadd(events, dict(user.events))
        if user.expires_ms is not None:
            for key in keys:
                pipe.pexpireat(key, user.expires_ms)


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
    dedupe: list[tuple[str, int]]  # event_id, expiry in unix ms
    users: list[StoredUser]


def _unix_ms(server_time: tuple[int, int]) -> int:
    seconds, micros = server_time
    return int(seconds) * 1000 + int(micros) // 1000


def _text_map(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {_decode(k): _decode(v) for k, v in raw.items()}


def _item_meta(item: ItemRecord) -> dict[str, Any]:
    return {"tags": item.tags, "pools": item.pools, "active": item.active, "updated": item.updated}


def _cluster_fields(clusters: ClusterModel) -> dict[str, Any]:
    """Return the clusters hash of a model, encoded as save_clusters encodes it."""
    assert clusters.centers is not None
    return {
        "gen": clusters.gen,
        "k": clusters.k,
        "dim": clusters.centers.shape[1],
        "centers": np.asarray(clusters.centers, dtype="<f4").tobytes(),
        "inertia": repr(float(clusters.inertia or 0.0)),
        "sizes": json.dumps(clusters.sizes),
        "fitted_at": repr(float(clusters.fitted_at or 0.0)),
    }


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK))


def _hset_all(pipe: Any, key: str, mapping: dict[str, Any]) -> None:
    """Queue HSETs of a mapping in chunks (none for an empty one, which HSET refuses)."""
    fields = list(mapping.items())
    for chunk in _chunks(fields):
        pipe.hset(key, mapping=dict(chunk))


def _triple(hashes: Sequence[dict[bytes, bytes]]) -> Counts:
    imp, clk, cnv = (_counts(h) for h in hashes)
    return imp, clk, cnv


def _user_state(
    state: dict[bytes, bytes],
    clicks: list[bytes],
    seen: dict[bytes, bytes],
    last_clicks: dict[bytes, bytes],
) -> UserState:
    fields = {_decode(k): _decode(v) for k, v in state.items()}
    parsed_seen = {}
    for item, value in seen.items():
        unclicked, _, updated = _decode(value).partition("|")
        parsed_seen[_decode(item)] = (float(unclicked), float(updated))
    return UserState(
        hist=int(fields.get("hist", 0)),
        membership=fields.get("membership"),
        assigned=fields.get("assigned"),
        clicks=[_decode(c) for c in clicks],
        seen=parsed_seen,
        last_clicks={
            _decode(item): (float(at), rec or None)
            for item, (at, _, rec) in (
                (i, _decode(v).partition("|")) for i, v in last_clicks.items()
            )
        },
    )
