"""Every Redis key of banditrec, and the key table of docs/redis-keys.md built from them.

A `{tag}` in a key is a Redis Cluster hash tag: every multi-key update touches keys of
one tag only, so it stays in one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# The count hashes summed over every cluster.
GLOBAL = "global"
# Change entries older than this are trimmed; a worker further behind reloads in full.
CHANGES_RETENTION_S = 120
# How long the key /readyz writes lives: it only has to outlast the probe.
READINESS_PROBE_TTL_MS = 10_000
# A user's keys, in the order record_user.lua takes them.
_USER_PARTS = ("state", "seen", "clicks", "events", "lastclick")


class UserKeys(NamedTuple):
    """One user's keys, in the order record_user.lua takes them."""

    state: str
    seen: str
    clicks: str
    events: str
    last_clicks: str


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys under one prefix (settings.key_prefix)."""

    prefix: str

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

    # -- arms -------------------------------------------------------------------------

    def arms(self, kind: str, gen: int | None = None, cluster: int | None = None) -> str:
        """Return the count hash of a kind in a generation's cluster, or the global one."""
        return self._arms(kind, GLOBAL if gen is None else f"{gen}:{cluster}")

    def arm_times(self, kind: str, gen: int | None = None, cluster: int | None = None) -> str:
        """Return the hash of when each count of arms(kind, gen, cluster) was discounted."""
        return self.arms(f"at:{kind}", gen, cluster)

    def _arms(self, kind: str, row: str) -> str:
        return f"{self.prefix}:{{arms}}:{kind}:{row}"

    @property
    def decay_since(self) -> str:
        """Return the key of when discounting was first used."""
        return f"{self.prefix}:{{arms}}:decay_since"

    @property
    def arms_version(self) -> str:
        """Return the counter of feedback batches that changed a count."""
        return f"{self.prefix}:{{arms}}:version"

    @property
    def changes(self) -> str:
        """Return the stream of those batches' new totals."""
        return f"{self.prefix}:{{arms}}:changes"

    @property
    def stats(self) -> str:
        """Return the hash of per-policy counters."""
        return f"{self.prefix}:{{arms}}:stats"

    @property
    def fatigue(self) -> str:
        """Return the hash of the learned seen decay's evidence per fatigue bucket."""
        return f"{self.prefix}:{{arms}}:fatigue"

    def marker(self, event_id: str) -> str:
        """Return the dedupe marker of an event (in the arms' slot: it guards their counts)."""
        return f"{self.prefix}:{{arms}}:ev:{event_id}"

    def marker_event_id(self, key: str) -> str:
        """Return the event_id of a marker key."""
        return key[len(self.marker("")) :]

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
        return self.marker("*")

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
    counts = "imp|clk|cnv"
    return [
        KeyEntry(keys.item_meta, "hash", "item_id → JSON `{tags, pools, active, updated}`"),
        KeyEntry(keys.item_embeddings, "hash", "item_id → float32 bytes of the embedding"),
        KeyEntry(keys.catalog_info, "hash", "`dim`, `version` (bumped on every catalog change)"),
        KeyEntry(
            keys._arms(counts, "G:C"),
            "hash",
            "item_id → impressions / clicks / conversions of generation G, cluster C, in "
            "millionths of an event (soft membership credits a share)",
        ),
        KeyEntry(
            keys.arms(counts),
            "hash",
            "the same in events, over every cluster; whole numbers unless counts are discounted",
        ),
        KeyEntry(
            keys._arms(f"at:{counts}", "G:C|global"),
            "hash",
            "item_id → when that count was last discounted (only with a count half-life, "
            "`BANDITREC_HALF_LIFE_H`)",
        ),
        KeyEntry(
            keys.decay_since,
            "string",
            "when discounting was first used: counts with no time of their own fade from then",
        ),
        KeyEntry(keys.arms_version, "int", "bumped by every feedback batch that changed a count"),
        KeyEntry(
            keys.changes,
            "stream",
            "one entry per such batch: `v` (the version), `d` (the new totals of every count "
            f"it changed, with the time they were discounted to), trimmed after "
            f"{CHANGES_RETENTION_S} s; workers "
            "apply these instead of re-reading every count",
        ),
        KeyEntry(
            keys.stats,
            "hash",
            "`/v1/stats` counters: `lists:POLICY`, `imp`/`clk`/`cnv:POLICY`, "
            "`agree_imp`/`agree_clk:POLICY`, `replay_imp`/`replay_clk:POLICY`, `since`",
        ),
        KeyEntry(
            keys.fatigue,
            "hash",
            "the learned seen decay's evidence: `imp:B`, `clk:B`, `exp:B` = impressions, "
            "clicks and expected clicks (sum of the served arms' posterior means) of fatigue "
            "bucket B, counted with the arm counts, never reset",
        ),
        KeyEntry(
            keys.marker("EVENT_ID"),
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
            "item_id → `unclicked|updated_at` (decayed lazily on read and write), at most "
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
            "| Key | Type | Holds |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )
