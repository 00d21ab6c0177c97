"""Every Redis key of banditrec, and the key table of docs/redis-keys.md built from them.

A `{tag}` in a key is a Redis Cluster hash tag: every multi-key update touches keys of
one tag only, so it stays in one slot.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import NamedTuple

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# The count hashes summed over every cluster.
GLOBAL = "global"
# Change entries older than this are trimmed; a worker further behind reloads in full.
CHANGES_RETENTION_S = 120
# How long the key /readyz writes lives: it only has to outlast the probe.
READINESS_PROBE_TTL_MS = 10_000
# Count shards by default: over 3 masters, 16 shards put 5 or 6 on each (max/mean 1.125).
DEFAULT_COUNT_SHARDS = 16
# The one tag every count had before counts were sharded; one shard keeps it (shard_tags).
LEGACY_TAG = "arms"
# A user's keys, in the order record_user.lua takes them.
_USER_PARTS = ("state", "seen", "clicks", "events", "lastclick")


class UserKeys(NamedTuple):
    """One user's keys, in the order record_user.lua takes them."""

    state: str
    seen: str
    clicks: str
    events: str
    last_clicks: str


@functools.cache
def shard_tags(shards: int) -> tuple[str, ...]:
    """Return the hash tags of the count shards, their slots spread evenly over the cluster.

    Shard s's tag is searched (deterministically) so that its slot lies near
    (s + 0.5) * 16384 / shards: consecutive slot ranges, which is how masters own them,
    then hold consecutive shards in equal numbers. The shard whose target is nearest
    the legacy tag's slot keeps "arms", so counts written before sharding still count.
    """
    width = REDIS_CLUSTER_HASH_SLOTS / shards
    legacy = int(key_slot(LEGACY_TAG.encode()) // width)
    tolerance = max(width / 8, 4)
    tags = []
    for s in range(shards):
        if s == legacy:
            tags.append(LEGACY_TAG)
            continue
        target = (s + 0.5) * width
        n = 0
        while abs(key_slot(f"{LEGACY_TAG}.{s}.{n}".encode()) - target) > tolerance:
            n += 1
        tags.append(f"{LEGACY_TAG}.{s}.{n}")
    return tuple(tags)


def shard_of(event_id: str, shards: int) -> int:
    """Return the count shard of an event: a stable hash of its id (the same in every process)."""
    return zlib.crc32(event_id.encode()) % shards


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys under one prefix (settings.key_prefix), with counts in `shards` shards.

    Counts are sharded by event, not by item: an event's dedupe marker, its counts, the
    change entry and stats it writes all live in the slot of shard_of(event_id), so one
    script decides and counts it; each shard holds a partial count of every item, and
    readers sum the shards.
    """

    prefix: str
    shards: int = DEFAULT_COUNT_SHARDS

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"shards must be >= 1, got {self.shards}")

    # -- catalog ------------------------------------------------------------------------

    @property
    def item_meta(self) -> str:
        """Return the hash of every item's meta JSON."""
        return f"{self.prefix}:{{items}}:meta"

    @property
    def item_embeddings(self) -> str:
        """Return the hash of every item's embedding bytes."""
        return f"{self.prefix}:{{items}}:emb"

    @property
    def catalog_info(self) -> str:
        """Return the hash of the catalog's dim and version."""
        return f"{self.prefix}:{{items}}:info"

    # -- arms (one set per count shard) ------------------------------------------------

    def shard_of(self, event_id: str) -> int:
        """Return the shard that counts an event."""
        return shard_of(event_id, self.shards)

    def tag(self, shard: int) -> str:
        """Return a count shard's hash tag."""
        return shard_tags(self.shards)[shard]

    def arms(
        self, kind: str, gen: int | None = None, cluster: int | None = None, *, shard: int
    ) -> str:
        """Return a shard's count hash of a kind in a generation's cluster, or the global one."""
        return self._arms(kind, GLOBAL if gen is None else f"{gen}:{cluster}", shard)

    def arm_times(
        self, kind: str, gen: int | None = None, cluster: int | None = None, *, shard: int
    ) -> str:
        """Return the hash of when each count of arms(kind, gen, cluster) was discounted."""
        return self.arms(f"at:{kind}", gen, cluster, shard=shard)

    def _arms(self, kind: str, row: str, shard: int) -> str:
        return f"{self._shard(shard)}:{kind}:{row}"

    def _shard(self, shard: int) -> str:
        return f"{self.prefix}:{{{self.tag(shard)}}}"

    @property
    def layout(self) -> str:
        """Return the record of the shard layout markers are written under (store/layout.py)."""
        return f"{self.prefix}:{{{LEGACY_TAG}}}:layout"

    def decay_since(self, shard: int) -> str:
        """Return the key of when a shard first discounted."""
        return f"{self._shard(shard)}:decay_since"

    def arms_version(self, shard: int) -> str:
        """Return a shard's counter of feedback batches that changed a count."""
        return f"{self._shard(shard)}:version"

    def changes(self, shard: int) -> str:
        """Return the stream of a shard's increments, one entry per batch."""
        return f"{self._shard(shard)}:changes"

    def stats(self, shard: int) -> str:
        """Return a shard's hash of per-policy counters (the stats are their sums)."""
        return f"{self._shard(shard)}:stats"

    def fatigue(self, shard: int) -> str:
        """Return a shard's part of the learned seen decay's evidence per fatigue bucket."""
        return f"{self._shard(shard)}:fatigue"

    def marker(self, event_id: str) -> str:
        """Return the dedupe marker of an event (in its shard's slot: it guards their counts)."""
        return f"{self._shard(self.shard_of(event_id))}:ev:{event_id}"

    def marker_event_id(self, key: str) -> str:
        """Return the event_id of a marker key."""
        return key.split("}:ev:", 1)[1]

    # -- clusters -----------------------------------------------------------------------

    @property
    def clusters(self) -> str:
        """Return the hash of the fitted clustering."""
        return f"{self.prefix}:{{clusters}}"

    # -- users and served lists ---------------------------------------------------------

    def user(self, user_id: str, part: str) -> str:
        """Return one of a user's keys: state, seen, clicks, events or lastclick."""
        return f"{self.prefix}:u:{{{user_id}}}:{part}"

    def user_keys(self, user_id: str) -> UserKeys:
        """Return all of a user's keys."""
        return UserKeys(*(self.user(user_id, part) for part in _USER_PARTS))

    def rec(self, rec_id: str) -> str:
        """Return the key of a served list."""
        return f"{self.prefix}:rec:{{{rec_id}}}"

    def outcomes(self, rec_id: str) -> str:
        """Return the hash of the outcomes feedback flagged on a served list."""
        return f"{self.rec(rec_id)}:out"

    # -- readiness ----------------------------------------------------------------------

    @property
    def readiness_probe(self) -> str:
        """Return the key /readyz reads and writes to learn whether Redis takes both."""
        return f"{self.prefix}:{{health}}:probe"

    # -- patterns for SCAN --------------------------------------------------------------

    @property
    def every_key(self) -> str:
        """Return the pattern of every key under the prefix."""
        return f"{self.prefix}:*"

    @property
    def every_marker(self) -> str:
        """Return the pattern of every dedupe marker."""
        return f"{self.prefix}:{{{LEGACY_TAG}*}}:ev:*"

    @property
    def every_user_key(self) -> str:
        """Return the pattern of every user's keys."""
        return self.user("*", "*")

    @property
    def every_user_clicks(self) -> str:
        """Return the pattern of every user's click list."""
        return self.user("*", "clicks")

    @property
    def every_rec(self) -> str:
        """Return the pattern of every served list (it ends in '}': no outcome hashes)."""
        return self.rec("*")


def tagged_id(key: str) -> str:
    """Return the user_id or rec_id in the hash tag of a user's key or a served list's key."""
    return key[key.index("{") + 1 : key.rindex("}")]


# -- docs/redis-keys.md -------------------------------------------------------------------


class KeyEntry(NamedTuple):
    """One row of the key table."""

    pattern: str
    type: str
    holds: str


def key_table() -> list[KeyEntry]:
    """Return every key's pattern (with prefix P), Redis type and contents."""
    keys = Keys("P")
    shard = "P:{S}"
    counts = "imp|clk|cnv"
    return [
        KeyEntry(keys.item_meta, "hash", "item_id → JSON `{tags, pools, active, updated}`"),
        KeyEntry(keys.item_embeddings, "hash", "item_id → float32 bytes of the embedding"),
        KeyEntry(keys.catalog_info, "hash", "`dim`, `version` (bumped on every catalog change)"),
        KeyEntry(
            f"{shard}:{counts}:G:C",
            "hash",
            "item_id → impressions / clicks / conversions of generation G, cluster C, in "
            "millionths of an event (soft membership credits a share)",
        ),
        KeyEntry(
            f"{shard}:{counts}:global",
            "hash",
            "the same in events, over every cluster; whole numbers unless counts are discounted",
        ),
        KeyEntry(
            f"{shard}:at:{counts}:G:C|global",
            "hash",
            "item_id → when that count was last discounted (only with a count half-life, "
            "`BANDITREC_HALF_LIFE_H`)",
        ),
        KeyEntry(
            keys.layout,
            "string",
            "`shards|since|previous`: the count shards markers are written under, since when, "
            "and the count before (0: none; 1 includes releases before sharding), whose "
            "markers feedback also reads for one dedupe retention (store/layout.py)",
        ),
        KeyEntry(
            f"{shard}:decay_since",
            "string",
            "when discounting was first used: counts with no time of their own fade from then",
        ),
        KeyEntry(
            f"{shard}:version", "int", "bumped by every feedback batch that changed a count here"
        ),
        KeyEntry(
            f"{shard}:changes",
            "stream",
            "one entry per such batch: `v` (the version), `d` (what it added to each count "
            f"it changed, summed per item, with the time it was added at), trimmed after "
            f"{CHANGES_RETENTION_S} s; workers "
            "apply these instead of re-reading every count",
        ),
        KeyEntry(
            f"{shard}:stats",
            "hash",
            "this shard's part of the `/v1/stats` counters (they are the sums over shards): "
            "`lists:POLICY` (in the shard of the rec_id), `imp`/`clk`/`cnv:POLICY`, "
            "`agree_imp`/`agree_clk:POLICY`, `replay_imp`/`replay_clk:POLICY`, `since`",
        ),
        KeyEntry(
            f"{shard}:fatigue",
            "hash",
            "this shard's part of the learned seen decay's evidence (readers sum the shards): "
            "`cimp:B`, `cclk:B`, `cexp:B` = impressions, clicks and clicks expected under the "
            "fixed decay (sum of the served arm's posterior mean x personal tilt x fixed decay) "
            "of fatigue bucket B, counted with the arm counts, never reset; `imp:B`, `clk:B`, "
            "`exp:B`: earlier releases' evidence (expected without tilt and decay), kept, unread",
        ),
        KeyEntry(
            f"{shard}:ev:EVENT_ID",
            "string",
            "dedupe marker: `u:USER`, the user the event counted for (`1`: owner unknown, "
            "as earlier releases wrote it), expires after `BANDITREC_DEDUPE_RETENTION_S`",
        ),
        KeyEntry(
            keys.clusters,
            "hash",
            "`gen`, `k`, `dim`, `centers` (float32), `inertia`, `sizes`, `fitted_at`",
        ),
        KeyEntry(
            keys.user("USER", "state"),
            "hash",
            "`hist` (clicks so far), cached `membership` and `assigned`, the `gen:hist:mode` "
            "it was computed for",
        ),
        KeyEntry(
            keys.user("USER", "clicks"),
            "list",
            "the last `BANDITREC_HISTORY_N` clicked item_ids, newest first",
        ),
        KeyEntry(
            keys.user("USER", "seen"),
            "hash",
            "item_id → `faded|updated_at|unclicked`: impressions without a click since the "
            "last click, fading with `BANDITREC_SEEN_HALF_LIFE_H` (decayed lazily on read and "
            "write; the fixed decay), when the last was, and their plain count (the learned "
            "decay's row; values of earlier releases lack it), at most "
            "`BANDITREC_USER_ITEMS_MAX` items (the least penalised go first)",
        ),
        KeyEntry(
            keys.user("USER", "events"),
            "zset",
            "event_ids already applied to this user, scored by time, pruned after the dedupe "
            "retention and to the newest `BANDITREC_USER_EVENTS_MAX`",
        ),
        KeyEntry(
            keys.user("USER", "lastclick"),
            "hash",
            "item_id → `clicked_at|rec_id`, to attribute conversions, at most "
            "`BANDITREC_USER_ITEMS_MAX` items (the oldest go first)",
        ),
        KeyEntry(
            keys.rec("REC_ID"),
            "string",
            "JSON of a served list (codecs.ServedList), expires after `BANDITREC_REC_LOG_TTL_S`",
        ),
        KeyEntry(
            keys.outcomes("REC_ID"),
            "hash",
            "`imp:ITEM` / `clk:ITEM` / `cnv:ITEM` = 1 once feedback named the list, expires "
            "with the list",
        ),
        KeyEntry(
            keys.readiness_probe,
            "string",
            f"when `/readyz` last wrote it (unix seconds), expires after "
            f"{READINESS_PROBE_TTL_MS // 1000} s",
        ),
    ]


def _cell(value: str) -> str:
    # A bare | ends a table cell, even inside `code`.
    return value.replace("|", "\\|")


def markdown() -> str:
    """Return docs/redis-keys.md."""
    rows = [f"| `{_cell(row.pattern)}` | {row.type} | {_cell(row.holds)} |" for row in key_table()]
    return "\n".join(
        [
            "# Redis keys",
            "",
            "<!-- Generated from service/store/keys.py by "
            "`python -m service.store > docs/redis-keys.md`; a test keeps it current. -->",
            "",
            "P is `BANDITREC_KEY_PREFIX` (default `br`). A `{tag}` is a Redis Cluster hash "
            "tag: every multi-key update touches keys of one tag only, so it stays in one "
            "slot. User keys expire after `BANDITREC_USER_TTL_S` of inactivity.",
            "",
            "S is the tag of one of the `BANDITREC_COUNT_SHARDS` count shards: `arms` for one "
            "of them (the tag of every count before counts were sharded), `arms.N.M` for the "
            "others, with M chosen so that the shards' slots spread evenly over the cluster "
            "(keys.shard_tags). An event is counted in shard crc32(event_id) mod S: its "
            "marker, its counts, its change entry and its stats in one slot, so one script "
            "decides and counts it. Each shard holds a partial count of every item; readers "
            "sum the shards (docs/scaling.md).",
            "",
            "| Key | Type | Holds |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )
